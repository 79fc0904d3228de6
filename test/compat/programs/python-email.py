# Python's email package and subprocess, as sendmail backends for Django
# send: the whole message on standard input of `sendmail -t -i`.
# Usage: python3 python-email.py MESSAGE_DIR
import subprocess
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

directory = sys.argv[1]
with open(f"{directory}/subject.txt", encoding="utf-8") as f:
    subject = f.read().rstrip("\n")
with open(f"{directory}/body.txt", encoding="utf-8") as f:
    body = f.read()
with open(f"{directory}/report.csv", "rb") as f:
    attachment = f.read()

message = EmailMessage()
message["Subject"] = subject
message["From"] = "Ann Example <ann@example.org>"
message["To"] = "bob@example.org"
message["Date"] = formatdate(localtime=True)
message["Message-ID"] = make_msgid()
message.set_content(body)
message.add_attachment(attachment, maintype="text", subtype="csv", filename="report.csv")

result = subprocess.run(["/usr/sbin/sendmail", "-t", "-i"], input=message.as_bytes())
sys.exit(result.returncode)
