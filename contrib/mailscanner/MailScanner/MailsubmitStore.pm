#
# MailsubmitStore.pm: the writing half of MailScanner's Postfix queue store
# (PFDiskStore.pm, package MailScanner::SMDiskStore), done through
# mailsubmit(1). Where PFDiskStore writes a queue file into Postfix's
# incoming queue, WriteHeader here runs the mailsubmit helper and writes the
# native envelope block (docs/submission-interface.md) and the message to
# its standard input. Postfix's queue file format is never written.
#
# Install() puts LinkData, WriteMIMEBody and WriteHeader, with the names and
# arguments MailScanner::Message calls them by, in place of PFDiskStore's;
# reading the incoming queue, locking and deleting stay PFDiskStore's.
#
# The message leaves MailScanner's queue only when the helper exits 0: the
# MTA then has it on stable storage. On any other status WriteHeader drops
# the message from the batch the way PFDiskStore does when it cannot write
# one, and MailScanner keeps it in its queue:
#   75, an unknown status, a signal, and the set-up errors 64, 66, 77, 78:
#     kept without counting an attempt, so MailScanner's "Maximum Processing
#     Attempts" can never end in dropping a message the MTA simply could not
#     take yet;
#   65, 67, 69 (refused, do not retry unchanged) and messages this module
#     refuses itself: kept and counted as a failed attempt, as MailScanner
#     counts a message it cannot write.
#
package MailScanner::MailsubmitStore;

use strict;
use warnings;

use POSIX ();
use MailScanner::MailsubmitEnvelope;
use MailScanner::MailsubmitQueueFile;

our $VERSION = '1';

# The helper and its arguments; the activation file may change them.
# -v makes the helper name the MTA's queue id on success.
our $Helper = '/usr/local/bin/mailsubmit';
our @HelperArgs = ('-v');

my %PERMANENT = (65 => 'refused the message', 67 => 'a recipient was refused', 69 => 'the MTA refused the message');
my %SETUP = (64 => 'bad command line', 66 => 'no input', 77 => 'not authorized', 78 => 'mailsubmit is not set up right');

# Replaces PFDiskStore's writer. Refuses unless PFDiskStore is the store in
# use (MailScanner's "MTA = postfix"), so another MTA's set-up is untouched.
sub Install {
  unless ($INC{'MailScanner/PFDiskStore.pm'} && defined &MailScanner::SMDiskStore::WriteHeader) {
    _log('warn', 'mailsubmit: not installed: MailScanner is not using its Postfix store (MTA = postfix)');
    return 0;
  }
  no warnings qw(redefine once);
  *MailScanner::SMDiskStore::LinkData = \&LinkData;
  *MailScanner::SMDiskStore::WriteMIMEBody = \&WriteMIMEBody;
  *MailScanner::SMDiskStore::WriteHeader = \&WriteHeader;
  _log('info', "mailsubmit: cleaned messages go to $Helper instead of Postfix's incoming queue");
  return 1;
}

# $store->LinkData($OutQ): the body goes out as it came in.
sub LinkData {
  my ($this, $outq) = @_;
  $this->{body} = [ 'ORIGINAL', $outq ];
  return;
}

# $store->WriteMIMEBody($id, $entity, $outq): the body is MailScanner's
# rebuilt MIME entity.
sub WriteMIMEBody {
  my ($this, $id, $entity, $outq) = @_;
  $this->{body} = [ 'MIME', $id, $entity, $outq ];
  return;
}

# $store->WriteHeader($message, $OutQ): hands the message to mailsubmit.
# Returns 1 when the MTA has it; otherwise 0, with the message dropped from
# the batch and left in MailScanner's queue.
sub WriteHeader {
  my ($this, $message, $outq) = @_;
  my $id = defined $message->{id} ? $message->{id} : '?';
  my ($input, $why) = Submission($this, $message);
  unless (defined $input) {
    _log('warn', "mailsubmit: message $id not sent, kept in the queue: $why");
    _keep($message, 1);
    return 0;
  }
  my ($status, $said) = RunHelper($input);
  $said = MailScanner::MailsubmitEnvelope::Visible($said);
  if ($status == 0) {
    my ($queue_id) = $said =~ /queued as (\S+)/;
    # The same words as PFDiskStore's, so log readers that follow a
    # message from MailScanner's id to Postfix's keep working.
    _log('info', sprintf('Requeue: %s to %s', $id, defined $queue_id ? $queue_id : 'mailsubmit'));
    return 1;
  }
  if ($PERMANENT{$status}) {
    _log('warn', "mailsubmit: message $id refused (exit $status, $PERMANENT{$status}), kept in the queue, "
      . "counted as a failed attempt: $said");
    _keep($message, 1);
  } elsif ($SETUP{$status}) {
    _log('warn', "mailsubmit: message $id not sent (exit $status, $SETUP{$status}), kept in the queue: $said");
    _keep($message, 0);
  } else {
    _log('warn', "mailsubmit: message $id deferred (exit $status), kept in the queue to try again: $said");
    _keep($message, 0);
  }
  return 0;
}

# Submission($store, $message) returns the helper's whole input (envelope
# block, empty line, message), or (undef, 'why').
sub Submission {
  my ($this, $message) = @_;
  my $envelope = MailScanner::MailsubmitEnvelope::Build($message);
  return (undef, $envelope->{refused}) if $envelope->{refused};
  my $id = defined $message->{id} ? $message->{id} : '?';
  _log('warn', "mailsubmit: message $id: " . MailScanner::MailsubmitEnvelope::Visible($_))
    for @{ $envelope->{notes} };
  my ($text, $why) = MessageText($this, $message);
  return (undef, $why) unless defined $text;
  _octets($text);
  # size lets the daemon check that it read every octet written here.
  my $block = join('', map { "$_\n" } @{ $envelope->{lines} }, 'size: ' . length($$text));
  _octets(\$block);
  return ($block . "\n" . $$text);
}

# MessageText($store, $message) returns (\$text): the header section from
# the metadata (where MailScanner put its changed headers), then the body,
# from the queue file or from the rebuilt MIME entity.
sub MessageText {
  my ($this, $message) = @_;
  my ($in_content, $text) = (0, '');
  for my $record (@{ $message->{metadata} || [] }) {
    my $type = substr($record, 0, 1);
    if ($type eq 'M') { $in_content = 1; next; }
    last if $type eq 'X';
    $text .= substr($record, 1) . "\n" if $in_content && ($type eq 'N' || $type eq 'L');
  }
  return (\$text) if $message->{nobody};
  $text .= "\n";
  my $kind = ref $this->{body} eq 'ARRAY' ? $this->{body}[0] : '';
  if ($kind eq 'MIME') {
    my $entity = $this->{body}[2];
    my $body = '';
    open(my $fh, '>', \$body) or return (undef, "cannot buffer the body: $!");
    my $ok = eval { $entity->print_body($fh); 1 };
    close $fh;
    return (undef, 'writing the rebuilt body failed: ' . ($@ || 'unknown error')) unless $ok;
    $text .= $body;
  } elsif ($kind eq 'ORIGINAL') {
    my ($body, $why) = MailScanner::MailsubmitQueueFile::ReadBody($this->{inhdhandle});
    return (undef, $why) unless $body;
    $text .= $$body;
  } else {
    return (undef, 'neither LinkData nor WriteMIMEBody was called before WriteHeader');
  }
  return (\$text);
}

# RunHelper($input) runs the helper with $input on its standard input and
# returns (exit status, what it said on standard error). A signal, or a
# helper that cannot be started, is 75 or 78: never 0.
sub RunHelper {
  my ($input) = @_;
  # Without these, a helper that exits before reading everything would kill
  # this process with SIGPIPE, and an ignored SIGCHLD would lose the status.
  local $SIG{PIPE} = 'IGNORE';
  local $SIG{CHLD} = 'DEFAULT';
  pipe(my $in_read, my $in_write) or return (75, "cannot make a pipe: $!");
  pipe(my $err_read, my $err_write) or return (75, "cannot make a pipe: $!");
  my $pid = fork;
  return (75, "cannot fork: $!") unless defined $pid;
  if ($pid == 0) {
    close $in_write;
    close $err_read;
    open(STDIN, '<&', $in_read) or POSIX::_exit(75);
    open(STDERR, '>&', $err_write) or POSIX::_exit(75);
    open(STDOUT, '>', '/dev/null') or POSIX::_exit(75);
    { no warnings 'exec'; exec { $Helper } $Helper, @HelperArgs; }
    print STDERR "mailsubmit: cannot run $Helper: $!\n";
    POSIX::_exit(78);
  }
  close $in_read;
  close $err_write;
  binmode $in_write;
  my $offset = 0;
  while ($offset < length $input) {
    my $written = syswrite($in_write, $input, length($input) - $offset, $offset);
    if (!defined $written) {
      next if $!{EINTR};
      last;    # The helper stopped reading; its status says why.
    }
    $offset += $written;
  }
  close $in_write;
  my $said = '';
  while (1) {
    my $got = sysread($err_read, my $chunk, 4096);
    if (!defined $got) { next if $!{EINTR}; last; }
    last if $got == 0;
    $said .= $chunk if length($said) < 65536;
  }
  close $err_read;
  my $waited;
  do { $waited = waitpid($pid, 0); } while ($waited == -1 && $!{EINTR});
  $said =~ s/\s+\z//;
  return (75, "lost the helper's exit status: $said") if $waited != $pid;
  return (75, 'the helper was killed by signal ' . POSIX::WTERMSIG($?) . ($said ne '' ? ": $said" : ''))
    if POSIX::WIFSIGNALED($?);
  return (POSIX::WEXITSTATUS($?), $said);
}

# Leaves the message in MailScanner's queue: unlocked, not deleted, out of
# this batch. $counted says whether it counts as a failed processing attempt.
sub _keep {
  my ($message, $counted) = @_;
  if ($counted && eval { $message->can('DropFromBatch') }) {
    $message->DropFromBatch();
    return;
  }
  $message->{gonefromdisk} = 1;    # The caller must not delete the original.
  $message->{store}->Unlock() if $message->{store};
  $message->{abandoned} = 1 if $counted;
}

# The helper reads octets. Text Perl has marked as characters goes back to
# the octets it came from, or to UTF-8 when it holds wider characters.
sub _octets {
  my ($text) = @_;
  utf8::encode($$text) if utf8::is_utf8($$text) && !utf8::downgrade($$text, 1);
  return;
}

sub _log {
  my ($level, $text) = @_;
  my $function = $level eq 'info' ? \&MailScanner::Log::InfoLog : \&MailScanner::Log::WarnLog;
  if (defined &$function) {
    $function->('%s', $text);
  } else {
    print STDERR "$text\n";
  }
}

1;
