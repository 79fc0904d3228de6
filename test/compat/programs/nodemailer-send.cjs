// nodemailer's sendmail transport with its defaults (sendmail from PATH).
// Usage: node nodemailer-send.cjs MESSAGE_DIR
'use strict';
const { readFileSync } = require('node:fs');
const nodemailer = require('nodemailer');

const directory = process.argv[2];
const transport = nodemailer.createTransport({ sendmail: true });
transport
  .sendMail({
    from: 'Ann Example <ann@example.org>',
    to: 'bob@example.org',
    subject: readFileSync(`${directory}/subject.txt`, 'utf8').trimEnd(),
    text: readFileSync(`${directory}/body.txt`, 'utf8'),
    attachments: [{ filename: 'report.csv', content: readFileSync(`${directory}/report.csv`) }],
  })
  .then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    },
  );
