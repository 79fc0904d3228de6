#
# MailsubmitEnvelope.pm: the native envelope block of mailsubmit(1), made
# from what a MailScanner::Message holds after MailScanner read a Postfix
# queue file: the sender in {from}, and in {metadata} the queue file's own
# records ("R" recipients, "O" original recipients, "A name=value"
# attributes: DSN flags and the facts of the SMTP session).
#
# Only attributes docs/submission-interface.md defines are written, with the
# names it gives them. A value with CR, LF or NUL is never written: the whole
# message is refused, since such a value could only end its line early and
# start another. An optional fact that does not fit the contract's grammar
# (a strange HELO name, say) is left out and said so, rather than holding
# the message back for ever over a logging attribute.
#
package MailScanner::MailsubmitEnvelope;

use strict;
use warnings;

our $VERSION = '1';

# The session facts, as the contract names them, and where Postfix keeps
# them. Postfix writes the "log_" copies for logging and its own XFORWARD:
# they name the original client even when the message came in through
# another filter, so they win over the others.
my @CLIENT_ATTRIBUTES = (
  [ 'protocol_name',  'log_protocol_name',  'protocol_name' ],
  [ 'helo_name',      'log_helo_name',      'helo_name' ],
  [ 'client_name',    'log_client_name',    'client_name' ],
  [ 'client_address', 'log_client_address', 'client_address' ],
  [ 'client_port',    'log_client_port',    'client_port' ],
  [ 'sasl_method',    'sasl_method' ],
  [ 'sasl_username',  'sasl_username' ],
  [ 'sasl_sender',    'sasl_sender' ],
);

# Postfix's DSN_NOTIFY_* bits (dsn.h) as the contract spells them.
my @NOTIFY_BITS = ([ 2, 'success' ], [ 4, 'failure' ], [ 8, 'delay' ]);
my $NOTIFY_NEVER = 1;

# Postfix's DSN_RET_* values.
my %RETURN_OPTION = (1 => 'full', 2 => 'headers');

# Grammar of the optional facts (the contract's table); anything outside is
# left out with a note.
my %FITS = (
  protocol_name  => sub { $_[0] =~ /\A[A-Za-z0-9_-]{1,64}\z/ },
  helo_name      => sub { $_[0] =~ /\A[\x21-\x7e]{1,255}\z/ },
  client_name    => \&_is_host_name,
  client_address => sub {
    $_[0] =~ /\A\[?(?:IPv6:)?[0-9A-Fa-f:.]{2,45}\]?\z/i && $_[0] =~ /[.:]/;
  },
  client_port    => sub { $_[0] =~ /\A[0-9]{1,5}\z/ && $_[0] <= 65535 },
  sasl_method    => sub { $_[0] =~ /\A[A-Za-z0-9_-]{1,64}\z/ },
  sasl_username  => sub { length($_[0]) <= 1024 && $_[0] !~ /[\x00-\x1f\x7f]/ },
  sasl_sender    => sub { $_[0] =~ /\A<?[^\s<>]+>?\z/ && length($_[0]) <= 258 },
  envelope_id    => sub { $_[0] =~ /\A[\x21-\x7e]{1,100}\z/ },
  orig_rcpt      => sub { length($_[0]) <= 500 && $_[0] !~ /[\x00-\x20\x7f]/ },
);

sub _is_host_name {
  my ($name) = @_;
  return 1 if $name eq 'unknown';
  return 0 if length($name) > 255;
  (my $bare = $name) =~ s/\.\z//;
  return 0 if $bare eq '';
  for my $label (split /\./, $bare, -1) {
    return 0 unless $label =~ /\A[A-Za-z0-9_-]{1,63}\z/;
  }
  return 1;
}

# Build($message) returns a hash reference:
#   { lines => [ 'name: value', ... ], notes => [ why something was left out ] }
# or, when the message must not be sent at all,
#   { refused => 'why' }.
sub Build {
  my ($message) = @_;
  my (%attribute, @recipients, %pending, @notes);
  my $segment = 'envelope';

  for my $record (@{ $message->{metadata} || [] }) {
    next unless defined $record && length $record;
    my ($type, $data) = (substr($record, 0, 1), substr($record, 1));
    if ($type eq 'M') { $segment = 'content'; %pending = (); next; }
    if ($type eq 'X') { $segment = 'extracted'; %pending = (); next; }
    # Header records sit between M and X; they are the message, not the envelope.
    next if $segment eq 'content';
    if ($type eq 'A') {
      my ($name, $value) = split /=/, $data, 2;
      next unless defined $value;
      if ($name eq 'notify_flags') { $pending{notify} = $value; }
      elsif ($name eq 'dsn_orig_rcpt') { $pending{orcpt} = $value; }
      else { $attribute{$name} = $value unless exists $attribute{$name}; }
    }
    # Older Postfix queue files had record types of their own for DSN.
    elsif ($type eq 'n') { $pending{notify} = $data; }
    elsif ($type eq 'o') { $pending{orcpt} = $data; }
    elsif ($type eq 'i') { $attribute{envelope_id} = $data unless exists $attribute{envelope_id}; }
    elsif ($type eq '<') { $attribute{ret_flags} = $data unless exists $attribute{ret_flags}; }
    elsif ($type eq 'O') { $pending{original} = $data; }
    elsif ($type eq 'R') {
      push @recipients, { address => $data, %pending };
      %pending = ();
    }
  }

  # Nothing may reach the helper with a line break or NUL in it.
  my @values = ([ sender => $message->{from} ]);
  for my $n (0 .. $#recipients) {
    my $rcpt = $recipients[$n];
    push @values, map { [ "recipient " . ($n + 1) . " $_" => $rcpt->{$_} ] } sort keys %$rcpt;
  }
  push @values, map { [ $_ => $attribute{$_} ] } sort keys %attribute;
  for my $pair (@values) {
    my ($what, $value) = @$pair;
    next unless defined $value && $value =~ /[\r\n\0]/;
    return { refused => "the " . Visible($what) . " value \"" . Visible($value) . "\" contains CR, LF or NUL" };
  }

  return { refused => 'the message has no recipients' } unless @recipients;

  my @lines;
  for my $spec (@CLIENT_ATTRIBUTES) {
    my ($name, @sources) = @$spec;
    my ($value) = grep { defined && $_ ne '' } map { $attribute{$_} } @sources;
    next unless defined $value;
    if ($FITS{$name}->($value)) { push @lines, "$name: $value"; }
    else { push @notes, "left out $name \"$value\": it does not fit the contract's grammar"; }
  }

  my $from = defined $message->{from} ? $message->{from} : '';
  $from =~ s/\A<(.*)>\z/$1/;
  return { refused => 'the sender contains white space or angle brackets' } if $from =~ /[\s<>]/;
  push @lines, 'sender: <' . $from . '>';

  if (defined(my $envid = $attribute{envelope_id})) {
    if ($FITS{envelope_id}->($envid)) { push @lines, "dsn-envelope-id: $envid"; }
    else { push @notes, "left out the DSN envelope id \"$envid\": not 1 to 100 printable characters"; }
  }
  if (defined(my $ret = $attribute{ret_flags})) {
    if (defined $RETURN_OPTION{$ret}) { push @lines, "dsn-return-option: $RETURN_OPTION{$ret}"; }
    else { push @notes, "left out the DSN return option $ret: unknown value"; }
  }

  for my $rcpt (@recipients) {
    my $address = $rcpt->{address};
    $address =~ s/\A<(.*)>\z/$1/;
    return { refused => "a recipient is empty" } if $address eq '';
    return { refused => "recipient \"$address\" contains white space or angle brackets" } if $address =~ /[\s<>]/;
    push @lines, "recipient: <$address>";
    my $notify = _notify($rcpt->{notify}, \@notes, $address);
    push @lines, "dsn-notify-options: $notify" if defined $notify;
    my $orcpt = _original_recipient($rcpt, $address);
    if (defined $orcpt) {
      if ($FITS{orig_rcpt}->($orcpt)) { push @lines, "dsn-orig-rcpt: $orcpt"; }
      else { push @notes, "left out the original recipient of $address: over 500 octets or white space"; }
    }
  }
  return { lines => \@lines, notes => \@notes };
}

# Postfix stores NOTIFY as a bit mask.
sub _notify {
  my ($flags, $notes, $address) = @_;
  return undef unless defined $flags && $flags ne '';
  unless ($flags =~ /\A[0-9]+\z/ && $flags > 0 && $flags < 16) {
    push @$notes, "left out NOTIFY flags \"$flags\" of $address: not a Postfix DSN mask";
    return undef;
  }
  return 'never' if $flags == $NOTIFY_NEVER;
  my @words = map { $_->[1] } grep { $flags & $_->[0] } @NOTIFY_BITS;
  push @$notes, "NOTIFY of $address had NEVER with other flags; kept the others" if $flags & $NOTIFY_NEVER;
  return join(',', @words);
}

# The ORCPT the client gave (Postfix keeps it decoded, as "type;address"),
# or else Postfix's own original recipient when the address was rewritten
# since: that is what Postfix would have reported as Original-Recipient.
sub _original_recipient {
  my ($rcpt, $address) = @_;
  return $rcpt->{orcpt} if defined $rcpt->{orcpt} && $rcpt->{orcpt} ne '';
  my $original = $rcpt->{original};
  return undef unless defined $original && $original ne '';
  $original =~ s/\A<(.*)>\z/$1/;
  return undef if lc($original) eq lc($address);
  return $original;
}

# A value for a log line: control characters shown as \xNN.
sub Visible {
  my ($text) = @_;
  $text =~ s/([\x00-\x1f\x7f])/sprintf("\\x%02X", ord $1)/ge;
  return $text;
}

1;
