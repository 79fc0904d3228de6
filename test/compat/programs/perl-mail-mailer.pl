# Mail::Mailer (MailTools) with its sendmail mailer.
# Usage: perl perl-mail-mailer.pl MESSAGE_DIR
use strict;
use warnings;
use Mail::Mailer;
use Encode qw(encode decode);

my $directory = shift @ARGV;
my $subject = do { local (@ARGV, $/) = ("$directory/subject.txt"); <> };
chomp $subject;
my $body = do { local (@ARGV, $/) = ("$directory/body.txt"); <> };
my $mailer = Mail::Mailer->new('sendmail');
$mailer->open({
    From                        => 'Ann Example <ann@example.org>',
    To                          => 'bob@example.org',
    Subject                     => encode('MIME-B', decode('UTF-8', $subject)),
    'MIME-Version'              => '1.0',
    'Content-Type'              => 'text/plain; charset=UTF-8',
    'Content-Transfer-Encoding' => '8bit',
});
print $mailer $body;
$mailer->close or die "sendmail failed: $?\n";
