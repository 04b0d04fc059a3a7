#!/usr/bin/perl -w
###############################################################################
# provisiond provisioning module for Apache VCL.
#
# Drives provisiond's admin API (docs/api.md of provisiond): a VCL computer is a
# provisiond node of the same short host name, a VCL image is a provisiond VNFS of
# the same name. Perl core, JSON and LWP::UserAgent only (what VCL already needs).
###############################################################################

=head1 NAME

VCL::Module::Provisioning::provisiond - VCL provisioning module for provisiond (stateless PXE/VNFS nodes)

=head1 DESCRIPTION

Installation, settings and the token role: adapters/vcl/README.md of provisiond.

Settings, from VCL's variable table (get_variable):

 provisiond|api_url        https://master:9870 (or .../api/v1)          required
 provisiond|token          a provisiond API token (operator; admin to capture) required
 provisiond|ca_file        PEM file of the CA that signed the API's certificate
 provisiond|verify_tls     0 switches certificate checks off (default 1)
 provisiond|poll_interval  seconds between task polls (default 5)

=cut

package VCL::Module::Provisioning::provisiond;

use strict;
use warnings;

use base qw(VCL::Module::Provisioning);

our $VERSION = '1.00';

use JSON;
use LWP::UserAgent;
use HTTP::Request;
use POSIX qw(ceil);
use VCL::utils;

# VCL's figures (xCAT module): no progress for max(10, image reload time) minutes, or an hour in all.
my $LOAD_MIN_IDLE_MINUTES = 10;
my $LOAD_OVERALL_SECONDS  = 60 * 60;
# image.pm's capture: 20 minutes without change, 6 hours in all.
my $CAPTURE_IDLE_SECONDS    = 20 * 60;
my $CAPTURE_OVERALL_SECONDS = 6 * 60 * 60;
# A power action: VCL tries 3 times, each waiting up to 60 s.
my $POWER_TRIES           = 3;
my $POWER_WAIT_SECONDS    = 60;
my $CANCEL_WAIT_SECONDS   = 120;
my $LASTCHECK_EVERY       = 60;

#//////////////////////////////////////////////////////////////////////////////

=head2 initialize

 Returns     : 1 when provisiond|api_url and provisiond|token are set; 0 otherwise
 Description : Reads the settings and prepares the HTTP client. Nothing is asked of
               the API here: each method reports its own failure.

=cut

sub initialize {
	my $self = shift;
	my $url   = _setting('api_url');
	my $token = _setting('token');
	if (!$url || !$token) {
		notify($ERRORS{'CRITICAL'}, 0, "provisiond: set provisiond|api_url and provisiond|token in VCL's variable table");
		return 0;
	}
	$url =~ s{/+$}{};
	$url .= '/api/v1' unless $url =~ m{/api/v1$};
	my $verify = _setting('verify_tls', 1);
	my $ca     = _setting('ca_file');
	my %ssl = (verify_hostname => $verify ? 1 : 0);
	$ssl{SSL_ca_file}     = $ca if $ca;
	$ssl{SSL_verify_mode} = 0   if !$verify;
	my $poll = _setting('poll_interval', 5);
	$poll = 5 unless $poll =~ /^\d+$/ && $poll > 0;
	$self->{provisiond} = {
		url   => $url,
		token => $token,
		poll  => $poll,
		ua    => LWP::UserAgent->new(agent => "vcl-provisiond/$VERSION", timeout => 60, ssl_opts => \%ssl),
	};
	notify($ERRORS{'DEBUG'}, 0, "provisiond: module initialized, API $url");
	return 1;
}

#//////////////////////////////////////////////////////////////////////////////

=head2 node_status

 Parameters  : optional computer name
 Returns     : the string 'READY' or 'RELOAD'; undef when provisiond cannot be asked
 Description : READY when provisiond's verdict is READY (powered on, checked in
               ready, on its VNFS, the image unchanged since boot) and the VNFS it
               booted is the reservation's image.

=cut

sub node_status {
	my ($self, $computer) = @_;
	my $node = $self->_node_name($computer) or return;
	my $image = $self->data->get_image_name(0);
	my $verdict = $self->_call(GET => '/nodes/' . _esc($node) . '/verdict') or return;
	if (($verdict->{verdict} || '') ne 'READY') {
		notify($ERRORS{'OK'}, 0, "provisiond: $node: RELOAD: " . ($verdict->{reason} || 'not ready'));
		return 'RELOAD';
	}
	my $info = $self->_call(GET => '/nodes/' . _esc($node)) or return;
	my $running = $info->{bootVnfs};
	if (!defined $image || !defined $running || $running ne $image) {
		notify($ERRORS{'OK'}, 0, "provisiond: $node: RELOAD: it runs " . ($running // 'nothing known') . ', the reservation wants ' . ($image // '(no image)'));
		return 'RELOAD';
	}
	notify($ERRORS{'OK'}, 0, "provisiond: $node: READY on $image");
	return 'READY';
}

#//////////////////////////////////////////////////////////////////////////////

=head2 load

 Returns     : 1 once the node is up and ready on the reservation's image; 0 otherwise
 Description : A provisiond deploy task (set the node's VNFS, PXE, power cycle,
               follow it until ready on that VNFS). Fails after max(10, image reload
               time) minutes without progress (each phase change is progress) or an
               hour in all, cancelling the task. Updates the reservation's lastcheck
               every minute and writes a load log entry at each phase. Then the OS
               module's post_load, when there is one.

=cut

sub load {
	my $self = shift;
	my $node  = $self->_node_name() or return 0;
	my $image = $self->data->get_image_name(0);
	if (!$image) {
		notify($ERRORS{'WARNING'}, 0, 'provisiond: load: the reservation names no image');
		return 0;
	}
	my $reload_minutes = $self->data->get_image_reload_time(0) || 0;
	my $idle = ($reload_minutes > $LOAD_MIN_IDLE_MINUTES ? $reload_minutes : $LOAD_MIN_IDLE_MINUTES) * 60;
	$self->_loadlog('info', "provisiond: deploying $image on $node");
	my $task = $self->_call(POST => '/nodes/' . _esc($node) . '/deploy', {vnfs => $image, timeout => $LOAD_OVERALL_SECONDS});
	if (!$task) {
		$self->_loadlog('loadimagefailed', "provisiond: the deploy of $image on $node was refused");
		return 0;
	}
	notify($ERRORS{'OK'}, 0, "provisiond: deploy task $task->{id}: $image on $node");
	my $done = $self->_follow_task($task, "deploy of $image on $node", $idle, $LOAD_OVERALL_SECONDS,
		sub { my ($phase, $message) = @_; $self->_loadlog("provisiond_$phase", "provisiond: $node: $message") });
	if (!$done || ($done->{result} || '') ne 'success') {
		$self->_loadlog('loadimagefailed', "provisiond: the deploy of $image on $node failed");
		return 0;
	}
	notify($ERRORS{'OK'}, 0, "provisiond: $node is ready on $image");
	my $os = $self->can('os') ? $self->os(0) : undef;
	if ($os && $os->can('post_load')) {
		if (!$os->post_load()) {
			notify($ERRORS{'WARNING'}, 0, "provisiond: the OS module's post_load failed on $node");
			$self->_loadlog('loadimagefailed', "provisiond: post_load failed on $node");
			return 0;
		}
	}
	$self->_loadlog('loadimagecomplete', "provisiond: $node is ready on $image");
	return 1;
}

#//////////////////////////////////////////////////////////////////////////////

=head2 capture

 Returns     : 1 once the new image exists in provisiond; 0 otherwise
 Description : The data structure names the image to make. Calls the OS module's
               pre_capture (the node stays on: its root file system is streamed
               while it runs), then a provisiond capture task (admin token), followed
               like load: 20 minutes without progress or 6 hours in all fail.

=cut

sub capture {
	my $self = shift;
	my $node  = $self->_node_name() or return 0;
	my $image = $self->data->get_image_name(0);
	if (!$image) {
		notify($ERRORS{'WARNING'}, 0, 'provisiond: capture: the data structure names no image');
		return 0;
	}
	my $os = $self->can('os') ? $self->os(0) : undef;
	if ($os && $os->can('pre_capture') && !$os->pre_capture({end_state => 'on'})) {
		notify($ERRORS{'WARNING'}, 0, "provisiond: the OS module's pre_capture failed on $node");
		return 0;
	}
	my $task = $self->_call(POST => '/nodes/' . _esc($node) . '/capture', {vnfs => $image, timeout => $CAPTURE_OVERALL_SECONDS}) or return 0;
	notify($ERRORS{'OK'}, 0, "provisiond: capture task $task->{id}: $node as $image");
	my $done = $self->_follow_task($task, "capture of $node as $image", $CAPTURE_IDLE_SECONDS, $CAPTURE_OVERALL_SECONDS);
	return 0 if !$done || ($done->{result} || '') ne 'success';
	return $self->does_image_exist($image) ? 1 : 0;
}

#//////////////////////////////////////////////////////////////////////////////

=head2 does_image_exist

 Parameters  : optional image name (default: the data structure's)
 Returns     : 1 when provisiond has a VNFS of that name, 0 otherwise

=cut

sub does_image_exist {
	my ($self, $name) = @_;
	$name = $self->data->get_image_name(0) unless defined $name && !ref $name;
	return 0 unless $name;
	my ($code, undef, $error) = $self->_request(GET => '/vnfs/' . _esc($name));
	return 1 if $code == 200;
	notify($ERRORS{'WARNING'}, 0, "provisiond: $error") if $code != 404;
	return 0;
}

#//////////////////////////////////////////////////////////////////////////////

=head2 get_image_size

 Parameters  : optional image name (default: the data structure's)
 Returns     : the size of the VNFS's image in MB, rounded up; 0 when it is not built
               yet; undef when there is no such VNFS or provisiond cannot be asked

=cut

sub get_image_size {
	my ($self, $name) = @_;
	$name = $self->data->get_image_name(0) unless defined $name && !ref $name;
	return unless $name;
	my $vnfs = $self->_call(GET => '/vnfs/' . _esc($name)) or return;
	return 0 unless defined $vnfs->{imageBytes};
	return ceil($vnfs->{imageBytes} / (1024 * 1024));
}

#//////////////////////////////////////////////////////////////////////////////

=head2 power_on, power_off, power_reset

 Returns     : 1 when the node's power driver did it; 0 otherwise
 Description : provisiond power tasks (on, off, cycle), each tried up to 3 times.

=cut

sub power_on    { return shift->_power('on', @_) }
sub power_off   { return shift->_power('off', @_) }
sub power_reset { return shift->_power('cycle', @_) }

=head2 power_status

 Returns     : 'on', 'off', or undef when unknown (no power driver, a failing BMC)

=cut

sub power_status {
	my ($self, $computer) = @_;
	my $node = $self->_node_name($computer) or return;
	my $power = $self->_call(GET => '/nodes/' . _esc($node) . '/power') or return;
	my $state = $power->{state} // '';
	return $state if $state eq 'on' || $state eq 'off';
	notify($ERRORS{'WARNING'}, 0, "provisiond: $node: power state $state");
	return;
}

#//////////////////////////////////////////////////////////////////////////////

=head2 get_current_image_name

 Returns     : the VNFS the node booted last, as it reported it; undef when unknown

=cut

sub get_current_image_name {
	my ($self, $computer) = @_;
	my $node = $self->_node_name($computer) or return;
	my $info = $self->_call(GET => '/nodes/' . _esc($node)) or return;
	return $info->{bootVnfs};
}

#//////////////////////////////////////////////////////////////////////////////

=head2 unload

 Returns     : 1 when the node is powered off (and its provisiond allocation, if it
               had one, released); 0 otherwise
 Description : A deploy of this node alone still running (an allocation's, a load
               whose vcld process died) is cancelled first, and waited for, so
               that it cannot power the node on again after the power off.

=cut

sub unload {
	my $self = shift;
	my $node = $self->_node_name() or return 0;
	$self->_end_deploys($node) or return 0;
	$self->power_off() or return 0;
	my $info = $self->_call(GET => '/nodes/' . _esc($node)) or return 0;
	return 1 unless defined $info->{owner};
	$self->_call(DELETE => '/allocations/' . _esc($node) . '?keep=true') or return 0;
	notify($ERRORS{'OK'}, 0, "provisiond: released $node (allocated to $info->{owner})");
	return 1;
}

#//////////////////////////////////////////////////////////////////////////////
# Internals

# A setting from VCL's variable table; $default when unset.
sub _setting {
	my ($key, $default) = @_;
	my $value = get_variable("provisiond|$key", 0);
	return (defined $value && $value ne '') ? $value : $default;
}

# The provisiond node name: the computer's short host name.
sub _node_name {
	my ($self, $computer) = @_;
	my $name = (defined $computer && !ref $computer && $computer ne '') ? $computer : $self->data->get_computer_node_name(0);
	if (!defined $name || $name eq '') {
		notify($ERRORS{'WARNING'}, 0, 'provisiond: the data structure names no computer');
		return;
	}
	$name =~ s/\..*$//;
	return $name;
}

sub _esc {
	my $s = shift;
	$s =~ s/([^A-Za-z0-9._~+-])/sprintf('%%%02X', ord $1)/ge;
	return $s;
}

# One API request: (HTTP status, decoded JSON answer, error text or undef).
sub _request {
	my ($self, $method, $path, $body) = @_;
	my $p = $self->{provisiond} or return (0, undef, 'provisiond: the module is not initialized');
	my $req = HTTP::Request->new($method => $p->{url} . $path);
	$req->header(Authorization => "Bearer $p->{token}", Accept => 'application/json');
	if (defined $body) {
		$req->header('Content-Type' => 'application/json');
		$req->content(encode_json($body));
	}
	my $res = $p->{ua}->request($req);
	my $text = $res->decoded_content // '';
	my $data = length $text ? eval { decode_json($text) } : undef;
	return ($res->code, $data, undef) if $res->is_success;
	my $reason = (ref $data eq 'HASH' && ref $data->{error} eq 'HASH' && $data->{error}{message})
		? $res->code . " $data->{error}{code}: $data->{error}{message}"
		: $res->status_line;
	return ($res->code, $data, "$method $path: $reason");
}

# The answer of a request that must succeed; undef (the API's message logged) otherwise.
sub _call {
	my $self = shift;
	my ($code, $data, $error) = $self->_request(@_);
	return $data || {} if !defined $error;
	notify($ERRORS{'WARNING'}, 0, "provisiond: $error");
	return;
}

# Follows a task until it ends: the ended task, or undef after $idle seconds without progress
# (a phase, a progress time or a message that moved) or $overall seconds in all (the task is then
# cancelled). $on_phase->(phase, message) is called at each node phase change.
sub _follow_task {
	my ($self, $task, $what, $idle, $overall, $on_phase) = @_;
	my $id = $task->{id};
	my $poll = $self->{provisiond}{poll};
	my $start = time;
	my $progress_at = $start;
	my $lastcheck_at = $start;
	my $seen = _progress_mark($task);
	my %told;
	for (;;) {
		_tell_phases($task, \%told, $on_phase) if $on_phase;
		return $self->_task_ended($task, $what) if ($task->{status} || '') =~ /^(complete|terminated)$/;
		my $now = time;
		if ($now - $progress_at >= $idle) {
			return $self->_give_up($id, "$what: no progress for " . int(($now - $progress_at) / 60) . ' minutes (task ' . $id . ')');
		}
		if ($now - $start >= $overall) {
			return $self->_give_up($id, "$what: not done after " . int(($now - $start) / 60) . ' minutes (task ' . $id . ')');
		}
		if ($now - $lastcheck_at >= $LASTCHECK_EVERY) {
			$self->_lastcheck();
			$lastcheck_at = $now;
		}
		sleep $poll;
		my ($code, $next, $error) = $self->_request(GET => '/tasks/' . _esc($id));
		if (defined $error) {
			# The master restarting (its tasks resume) is no progress, but not the end either.
			notify($ERRORS{'WARNING'}, 0, "provisiond: $error");
			next;
		}
		$task = $next;
		my $mark = _progress_mark($task);
		if ($mark ne $seen) {
			$seen = $mark;
			$progress_at = time;
		}
	}
}

# Calls $on_phase->(phase, message) once for each phase a node of the task reached since the last
# call, in order: from the node's messages (each phase change is one, "dhcp: ..."), which keep the
# phases a poll did not see, then from its current phase.
sub _tell_phases {
	my ($task, $told, $on_phase) = @_;
	for my $n (@{$task->{nodes} || []}) {
		my $t = $told->{$n->{node}} ||= {count => 0, phases => {}};
		my @messages = @{$n->{messages} || []};
		for my $m (@messages[$t->{count} .. $#messages]) {
			my ($phase) = ($m->{message} // '') =~ /^(power|dhcp|kernel|init|getfile|ready): /;
			next if !$phase || $t->{phases}{$phase}++;
			$on_phase->($phase, $m->{message});
		}
		$t->{count} = scalar @messages;
		my $phase = $n->{phase};
		$on_phase->($phase, @messages ? $messages[-1]{message} : $phase) if $phase && !$t->{phases}{$phase}++;
	}
	return;
}

# What moves when a task progresses: its phases, progress times and messages.
sub _progress_mark {
	my $task = shift;
	my @parts = ($task->{status} // '', $task->{progressAt} // '', scalar @{$task->{messages} || []});
	push @parts, join(',', $_->{node}, $_->{phase} // '', $_->{progressAt} // '', scalar @{$_->{messages} || []}) for @{$task->{nodes} || []};
	return join('|', @parts);
}

sub _task_ended {
	my ($self, $task, $what) = @_;
	return $task if ($task->{result} || '') eq 'success';
	my @errors = map { $_->{message} } grep { $_->{error} } (@{$task->{messages} || []}, map { @{$_->{messages} || []} } @{$task->{nodes} || []});
	notify($ERRORS{'WARNING'}, 0, "provisiond: $what: task $task->{id} ended $task->{status}/$task->{result}" . (@errors ? ': ' . join('; ', @errors) : ''));
	return $task;
}

sub _give_up {
	my ($self, $id, $message) = @_;
	notify($ERRORS{'WARNING'}, 0, "provisiond: $message: cancelling it");
	$self->_call(POST => '/tasks/' . _esc($id) . '/cancel', {});
	return;
}

# Cancels the unfinished deploy tasks of $node alone and waits until each has ended; a deploy of
# several nodes is left alone (it is someone else's), said in the log. 1 once none is left running.
sub _end_deploys {
	my ($self, $node) = @_;
	my ($cursor, @mine) = ('');
	for (;;) {
		my $page = $self->_call(GET => '/tasks?unfinished=true&limit=100' . ($cursor ne '' ? '&cursor=' . _esc($cursor) : '')) or return 0;
		for my $t (@{$page->{items} || []}) {
			next unless ($t->{action} || '') eq 'deploy';
			my @nodes = @{($t->{params} || {})->{nodes} || []};
			next unless grep { $_ eq $node } @nodes;
			if (@nodes == 1) { push @mine, $t }
			else { notify($ERRORS{'WARNING'}, 0, "provisiond: unload: $node is in deploy task $t->{id} of " . scalar(@nodes) . ' nodes: not cancelled') }
		}
		$cursor = $page->{next} // '';
		last if $cursor eq '';
	}
	for my $t (@mine) {
		notify($ERRORS{'OK'}, 0, "provisiond: unload: cancelling deploy task $t->{id} of $node");
		my $task = $self->_call(POST => '/tasks/' . _esc($t->{id}) . '/cancel', {}) or return 0;
		my $start = time;
		until (($task->{status} || '') =~ /^(complete|terminated)$/) {
			if (time - $start >= $CANCEL_WAIT_SECONDS) {
				notify($ERRORS{'WARNING'}, 0, "provisiond: unload: deploy task $t->{id} of $node still $task->{status} " . (time - $start) . ' s after its cancel');
				return 0;
			}
			sleep $self->{provisiond}{poll};
			my ($code, $next, $error) = $self->_request(GET => '/tasks/' . _esc($t->{id}));
			if (defined $error) { notify($ERRORS{'WARNING'}, 0, "provisiond: $error"); next }
			$task = $next;
		}
		notify($ERRORS{'OK'}, 0, "provisiond: unload: deploy task $t->{id} of $node ended ($task->{status}/$task->{result})");
	}
	return 1;
}

sub _power {
	my ($self, $action, $computer) = @_;
	my $node = $self->_node_name($computer) or return 0;
	for my $try (1 .. $POWER_TRIES) {
		my $task = $self->_call(POST => '/nodes/' . _esc($node) . '/power', {action => $action}) or return 0;
		my $done = $self->_follow_task($task, "power $action of $node (try $try of $POWER_TRIES)", $POWER_WAIT_SECONDS, $POWER_WAIT_SECONDS);
		return 1 if $done && ($done->{result} || '') eq 'success';
	}
	return 0;
}

sub _loadlog {
	my ($self, $state, $message) = @_;
	my $reservation = $self->data->get_reservation_id(0);
	my $computer    = $self->data->get_computer_id(0);
	insertloadlog($reservation, $computer, $state, $message) if $reservation && __PACKAGE__->can('insertloadlog');
	return;
}

sub _lastcheck {
	my $self = shift;
	my $reservation = $self->data->get_reservation_id(0);
	update_reservation_lastcheck($reservation) if $reservation && __PACKAGE__->can('update_reservation_lastcheck');
	return;
}

1;
