<?php
// PHP's mail() with the default sendmail_path.
// Usage: php php-mail.php MESSAGE_DIR
$directory = $argv[1];
$subject = rtrim(file_get_contents("$directory/subject.txt"), "\n");
$body = file_get_contents("$directory/body.txt");
$headers = [
    'From' => 'Ann Example <ann@example.org>',
    'MIME-Version' => '1.0',
    'Content-Type' => 'text/plain; charset=UTF-8',
    'Content-Transfer-Encoding' => '8bit',
];
$sent = mail('bob@example.org', '=?UTF-8?B?' . base64_encode($subject) . '?=', $body, $headers);
exit($sent ? 0 : 1);
