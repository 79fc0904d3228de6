#
# MailsubmitQueueFile.pm: reads the body of a message out of the Postfix
# queue file MailScanner holds open (its store's {inhdhandle}), for a message
# whose body MailScanner left as it was. The header section is not read
# here: MailScanner keeps its own, possibly changed, copy in the message's
# metadata.
#
# A queue file is a run of records: a type octet, a length in 7-bit groups
# (least significant first, high bit set when another group follows), then
# the data. The first record ("C") gives the offset of the message content;
# "N" is a line, "L" a piece of a line too long for one record, "p" a jump
# to another offset (0 is a placeholder), "w" padding, "X" the end of the
# content. Unlike MailScanner's own writer this joins "L" pieces back into
# one line instead of breaking the line in two.
#
package MailScanner::MailsubmitQueueFile;

use strict;
use warnings;

our $VERSION = '1';

# More jumps than any queue file Postfix writes; a loop stops here.
our $MaxJumps = 10000;

# ReadBody($handle) returns (\$body) with the body, lines ended by LF, or
# (undef, 'why') when the file is not a complete queue file.
sub ReadBody {
  my ($fh) = @_;
  return (undef, 'no queue file handle') unless $fh;
  seek($fh, 0, 0) or return (undef, "cannot seek in the queue file: $!");
  my ($type, $data) = ReadRecord($fh);
  return (undef, 'the queue file does not start with a size record')
    unless defined $type && $type eq 'C';
  my (undef, $offset) = split ' ', $data;
  return (undef, 'the queue file has no content offset')
    unless defined $offset && $offset =~ /\A[0-9]+\z/ && $offset > 0;
  seek($fh, $offset, 0) or return (undef, "cannot seek in the queue file: $!");

  my ($in_header, $piece, $jumps, $body) = (1, undef, 0, '');
  while (1) {
    ($type, $data) = ReadRecord($fh);
    return (undef, 'the queue file ends before the end of the message') unless defined $type;
    if ($type eq 'p') {
      next if $data =~ /\A\s*0*\s*\z/;
      return (undef, 'the queue file has a bad pointer record') unless $data =~ /\A\s*([0-9]+)\s*\z/;
      return (undef, 'the queue file loops') if ++$jumps > $MaxJumps;
      seek($fh, $1, 0) or return (undef, "cannot seek in the queue file: $!");
      next;
    }
    next if $type eq 'w';
    last if $type eq 'X';
    return (undef, "the queue file has a \"$type\" record inside the message")
      unless $type eq 'N' || $type eq 'L';
    if ($in_header) {
      # The header section ends at the first empty line that is not the
      # last piece of a long one.
      $in_header = 0 if $type eq 'N' && $data eq '' && !defined $piece;
      $piece = $type eq 'L' ? '' : undef;
      next;
    }
    if ($type eq 'L') {
      $piece = (defined $piece ? $piece : '') . $data;
      next;
    }
    $body .= (defined $piece ? $piece : '') . $data . "\n";
    $piece = undef;
  }
  $body .= "$piece\n" if defined $piece;
  return (\$body);
}

# ReadRecord($handle) returns (type, data), or () at the end of the file or
# on a broken record.
sub ReadRecord {
  my ($fh) = @_;
  my $type;
  return () unless read($fh, $type, 1) == 1;
  my ($length, $shift) = (0, 0);
  while (1) {
    my $octet;
    return () unless read($fh, $octet, 1) == 1;
    $octet = ord $octet;
    $length |= ($octet & 0x7f) << $shift;
    last unless $octet & 0x80;
    $shift += 7;
    return () if $shift > 28;
  }
  my $data = '';
  if ($length > 0) {
    return () unless read($fh, $data, $length) == $length;
  }
  return ($type, $data);
}

1;
