# Email::Sender::Simple, whose default transport is Email::Sender's Sendmail.
# Usage: perl perl-email-sender.pl MESSAGE_DIR
use strict;
use warnings;
use Email::Sender::Simple qw(sendmail);
use Email::Simple;
use Encode qw(encode decode);

my $directory = shift @ARGV;
my $subject = do { local (@ARGV, $/) = ("$directory/subject.txt"); <> };
chomp $subject;
my $body = do { local (@ARGV, $/) = ("$directory/body.txt"); <> };
my $email = Email::Simple->create(
    header => [
        From                        => 'Ann Example <ann@example.org>',
        To                          => 'bob@example.org',
        Subject                     => encode('MIME-Header', decode('UTF-8', $subject)),
        'MIME-Version'              => '1.0',
        'Content-Type'              => 'text/plain; charset=UTF-8',
        'Content-Transfer-Encoding' => '8bit',
    ],
    body => $body,
);
sendmail($email);
