# The mail gem's sendmail delivery method, as Rails' ActionMailer uses it.
# Usage: ruby ruby-mail.rb MESSAGE_DIR
require 'mail'

directory = ARGV.fetch(0)
message = Mail.new
message.from = 'Ann Example <ann@example.org>'
message.to = 'bob@example.org'
message.subject = File.read("#{directory}/subject.txt", encoding: 'UTF-8').chomp
message.text_part = Mail::Part.new do
  content_type 'text/plain; charset=UTF-8'
  body File.read("#{directory}/body.txt", encoding: 'UTF-8')
end
message.add_file(filename: 'report.csv', content: File.binread("#{directory}/report.csv"))
message.delivery_method :sendmail
message.deliver
