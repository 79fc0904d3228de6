import { describe, expect, it } from 'vitest';
import { parseAddressList } from '../../src/sendmail/address-list.ts';
import { expectSubmissionError } from '../envelope/expect-submission-error.ts';

describe('parseAddressList', () => {
  it.each([
    ['bob@example.org', ['bob@example.org']],
    ['Bob <bob@x.example>, carol@y.example', ['bob@x.example', 'carol@y.example']],
    ['"Smith, Bob" <bob@x.example>', ['bob@x.example']],
    ['bob@x.example (Bob Smith), (lead) carol@y.example', ['bob@x.example', 'carol@y.example']],
    ['undisclosed-recipients:;', []],
    ['team: a@x.example, b@x.example;, c@y.example', ['a@x.example', 'b@x.example', 'c@y.example']],
    ['a@x.example,, ,b@x.example,', ['a@x.example', 'b@x.example']],
    ['"quoted local"@x.example', ['"quoted local"@x.example']],
    ['user@[192.0.2.1]', ['user@[192.0.2.1]']],
    ['first . last @ x.example', ['first.last@x.example']],
    ['alice', ['alice']],
    ['=?UTF-8?B?w6k=?= <e@x.example>', ['e@x.example']],
    ['Jörg <jörg@bücher.example>', ['jörg@bücher.example']],
    ['"a (not a comment)" <a@x.example>', ['a@x.example']],
    ['(outer (nested) comment) a@x.example', ['a@x.example']],
    ['', []],
  ])('%j gives %j', (text, expected) => {
    expect(parseAddressList(text)).toEqual(expected);
  });

  it('gives <> for an empty angle address, for parseAddress to refuse', () => {
    expect(parseAddressList('Nobody <>')).toEqual(['<>']);
  });

  it.each([
    ['Bob Smith', /display name needs the address in angle brackets/],
    ['<a@x.example', /"<" without ">"/],
    ['a@x.example>', /">" without "<"/],
    ['<a@x.example> trailing', /text after the ">"/],
    ['"unclosed@x.example', /no closing quote/],
    ['(unclosed a@x.example', /no closing parenthesis/],
    ['team: a@x.example', /without its closing ";"/],
    ['a@x.example;', /without a group/],
    ['g1: g2: a@x.example;;', /group inside a group/],
    ['a@x.example\nRCPT TO:<b@x.example>', /line feed/],
    ['a\\b@x.example', /outside quotes/],
  ])('refuses %j', (text, detail) => {
    expectSubmissionError(() => parseAddressList(text, { line: 7, attribute: 'recipient' }), {
      outcome: 'recipient-syntax',
      line: 7,
      attribute: 'recipient',
      detail,
    });
  });
});
