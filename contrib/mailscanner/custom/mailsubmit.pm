#
# mailsubmit.pm: switches MailScanner's Postfix store over to mailsubmit(1).
# Put this file in MailScanner's "Custom Functions Dir" (by default
# /usr/share/MailScanner/perl/custom) and MailsubmitStore.pm with its two
# companions next to PFDiskStore.pm; see contrib/mailscanner/README.md.
# MailScanner loads this file after PFDiskStore.pm, so Install() can put
# mailsubmit's writer in place of PFDiskStore's. Remove the file to switch
# back.
#
use strict;
use warnings;
use MailScanner::MailsubmitStore;

# Where install.sh put the helper (its --prefix, /usr/local by default).
$MailScanner::MailsubmitStore::Helper = '/usr/local/bin/mailsubmit';

MailScanner::MailsubmitStore::Install();

1;
