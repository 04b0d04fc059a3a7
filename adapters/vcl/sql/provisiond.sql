-- Registers provisiond's provisioning module in Apache VCL's database (MySQL/MariaDB):
--   mysql vcl < provisiond.sql
-- Safe to run again (INSERT IGNORE on VCL's unique names). See ../README.md.

-- The Perl package VCL loads for computers that use this provisioning.
INSERT IGNORE INTO `module` (`name`, `prettyname`, `description`, `perlpackage`) VALUES
('provisioning_provisiond', 'provisiond Provisioning Module',
 'Stateless nodes PXE-booted by provisiond into a VNFS, driven through its admin API',
 'VCL::Module::Provisioning::provisiond');

-- The provisioning a computer points at (computer.provisioningid).
INSERT IGNORE INTO `provisioning` (`name`, `prettyname`, `moduleid`) VALUES
('provisiond', 'provisiond (PXE + VNFS)', (SELECT `id` FROM `module` WHERE `name` = 'provisioning_provisiond'));

-- The OS install type of images that are provisiond VNFS, and the provisioning that installs it.
INSERT IGNORE INTO `OSinstalltype` (`name`) VALUES ('provisiond');

INSERT IGNORE INTO `provisioningOSinstalltype` (`provisioningid`, `OSinstalltypeid`) VALUES
((SELECT `id` FROM `provisioning` WHERE `name` = 'provisiond'), (SELECT `id` FROM `OSinstalltype` WHERE `name` = 'provisiond'));

-- The load states the module logs (insertloadlog), one per phase of provisiond's deploy task,
-- with VCL's estimate in seconds.
INSERT IGNORE INTO `computerloadstate` (`loadstatename`, `prettyname`, `est`) VALUES
('provisiond_power', 'provisiond: power cycled to boot PXE', 5),
('provisiond_dhcp', 'provisiond: node got its DHCP address', 10),
('provisiond_kernel', 'provisiond: stage-1 kernel loading', 10),
('provisiond_init', 'provisiond: running the init nodescripts', 5),
('provisiond_getfile', 'provisiond: fetching the VNFS image', 30),
('provisiond_ready', 'provisiond: node ready on its VNFS', 5);

-- The settings (VCL's variable table); replace the values, then remove the comment marks:
-- INSERT INTO `variable` (`name`, `serialization`, `value`, `setby`, `timestamp`) VALUES
-- ('provisiond|api_url', 'none', 'https://10.0.0.1:9870', 'provisiond.sql', NOW()),
-- ('provisiond|token', 'none', 'pvd_...', 'provisiond.sql', NOW()),
-- ('provisiond|ca_file', 'none', '/etc/vcl/provisiond-ca.crt', 'provisiond.sql', NOW());

-- A computer provisioned by provisiond (its hostname's short name is the provisiond node name):
-- UPDATE `computer` SET `provisioningid` = (SELECT `id` FROM `provisioning` WHERE `name` = 'provisiond')
--  WHERE `hostname` LIKE 'n0%';
