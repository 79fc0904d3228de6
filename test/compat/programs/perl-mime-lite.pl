# MIME::Lite's send with its default, sendmail.
# Usage: perl perl-mime-lite.pl MESSAGE_DIR
use strict;
use warnings;
use MIME::Lite;
use Encode qw(encode);

my $directory = shift @ARGV;
my $subject = do { local (@ARGV, $/) = ("$directory/subject.txt"); <> };
chomp $subject;
my $message = MIME::Lite->new(
    From    => 'Ann Example <ann@example.org>',
    To      => 'bob@example.org',
    Subject => encode('MIME-B', Encode::decode('UTF-8', $subject)),
    Type    => 'multipart/mixed',
);
$message->attach(Type => 'text/plain; charset=UTF-8', Encoding => '8bit', Path => "$directory/body.txt");
$message->attach(Type => 'text/csv', Encoding => 'base64', Path => "$directory/report.csv", Filename => 'report.csv', Disposition => 'attachment');
$message->send or die "send failed\n";
