/**
 * The spawner process's program, in Perl because perl-base is Essential on Debian (always present)
 * and a small Perl process forks in microseconds, where forking the daemon from Node blocks its event
 * loop until the child has exec'd. It is a dumb executor: Node decides timeouts and limits.
 *
 * Protocol (both ways): frames of `type(1 byte) id(u32 BE) length(u32 BE) payload`.
 *  to the spawner:   R id "path\0cwd\0K=V\0K=V..."  run;   K id "TERM"|"KILL"  signal the job's process group
 *  from the spawner: O id bytes (stdout)   E id bytes (stderr)   X id "code signo" (exited, pipes closed)
 *                    F id message (could not start)
 * When its stdin closes it sends SIGTERM to every job's group (SIGKILL 3 s later) and exits.
 */
export const SPAWNER_PERL = String.raw`
use strict; use warnings; use POSIX ();
$0 = 'provisiond-spawner';
$SIG{PIPE} = 'IGNORE';
my $chld = 0; $SIG{CHLD} = sub { $chld = 1 };
binmode STDIN; binmode STDOUT;
open(my $null, '<', '/dev/null') or die "provisiond-spawner: /dev/null: $!\n";
my (%jobs, %pid2id, %fd);
my $in = ''; my $ineof = 0; my $ineof_at = 0; my $killed = 0;

# Frames are gathered and written once per loop turn: one write, one wakeup of the daemon.
my $out = '';
sub emit {
  my ($t, $id, $p) = @_;
  $out .= pack('a1 N N', $t, $id, length $p) . $p;
  flush() if length($out) >= 262144;
}
sub flush {
  while (length $out) {
    my $n = syswrite(STDOUT, $out);
    if (!defined $n) { next if $!{EINTR} || $!{EAGAIN}; POSIX::_exit(0); }
    substr($out, 0, $n, '');
  }
}

sub finish {
  my ($id) = @_;
  my $j = $jobs{$id};
  return unless $j && $j->{open} == 0 && $j->{status};
  emit('X', $id, join(' ', @{$j->{status}}));
  delete $jobs{$id};
}

sub start {
  my ($id, $p) = @_;
  my ($path, $cwd, @env) = split /\0/, $p, -1;
  my ($or, $ow, $er, $ew);
  unless (pipe($or, $ow) && pipe($er, $ew)) { emit('F', $id, "pipe: $!"); return; }
  my $pid = fork();
  if (!defined $pid) { my $e = "$!"; close $_ for ($or, $ow, $er, $ew); emit('F', $id, "fork: $e"); return; }
  if ($pid == 0) {
    POSIX::setsid();
    POSIX::dup2(fileno($null), 0); POSIX::dup2(fileno($ow), 1); POSIX::dup2(fileno($ew), 2);
    $SIG{PIPE} = 'DEFAULT'; $SIG{CHLD} = 'DEFAULT';
    %ENV = ();
    for (@env) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v; }
    chdir($cwd) or do { print STDERR "cannot change directory to $cwd: $!\n"; POSIX::_exit(126); };
    { no warnings; exec { $path } $path; }
    print STDERR "cannot execute $path: $!\n";
    POSIX::_exit(127);
  }
  close $ow; close $ew;
  $jobs{$id} = { pid => $pid, open => 2, status => undef };
  $pid2id{$pid} = $id;
  $fd{fileno $or} = [$or, $id, 'O'];
  $fd{fileno $er} = [$er, $id, 'E'];
}

sub reap {
  $chld = 0;
  while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
    my $st = $?;
    my $id = delete $pid2id{$pid};
    next unless defined $id && $jobs{$id};
    $jobs{$id}{status} = ($st & 127) ? [-1, $st & 127] : [$st >> 8, 0];
    finish($id);
  }
}

sub input {
  while (length($in) >= 9) {
    my ($t, $id, $len) = unpack('a1 N N', $in);
    last if length($in) < 9 + $len;
    my $p = substr($in, 9, $len);
    substr($in, 0, 9 + $len, '');
    if ($t eq 'R') { start($id, $p); }
    elsif ($t eq 'K') { my $j = $jobs{$id}; kill($p, -$j->{pid}) if $j; }
  }
}

for (;;) {
  reap() if $chld || %pid2id;
  flush();
  if ($ineof) {
    exit 0 unless %jobs;
    if (!$killed && time - $ineof_at >= 3) { kill('KILL', -$_->{pid}) for values %jobs; $killed = 1; }
  }
  my $rin = '';
  vec($rin, 0, 1) = 1 unless $ineof;
  vec($rin, $_, 1) = 1 for keys %fd;
  # Output EOF comes a moment before the exit status can be reaped; a SIGCHLD arriving just before
  # select() would not interrupt it, so a job in that state is polled every millisecond instead.
  my $timeout = $ineof ? 0.5 : undef;
  for (values %jobs) { if ($_->{open} == 0 && !$_->{status}) { $timeout = 0.001; last; } }
  $timeout = 0 if $chld;
  my $n = select(my $rout = $rin, undef, undef, $timeout);
  if ($n < 0) { next if $!{EINTR}; die "provisiond-spawner: select: $!\n"; }
  next if $n == 0;
  if (vec($rout, 0, 1)) {
    my $r = sysread(STDIN, $in, 65536, length $in);
    if (defined $r && $r == 0) { $ineof = 1; $ineof_at = time; kill('TERM', -$_->{pid}) for values %jobs; }
    elsif (defined $r) { input(); }
  }
  for my $f (keys %fd) {
    next unless vec($rout, $f, 1);
    my ($fh, $id, $t) = @{$fd{$f}};
    my $buf;
    my $r = sysread($fh, $buf, 65536);
    if (!defined $r) { next if $!{EINTR} || $!{EAGAIN}; $r = 0; }
    if ($r > 0) { emit($t, $id, $buf); next; }
    close $fh; delete $fd{$f};
    $jobs{$id}{open}--;
    finish($id);
  }
}
`;
