import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, printable, printableLines, quoted } from './display.ts';

describe('showing outside text', () => {
  it('shows control and direction characters instead of passing them to the terminal', () => {
    assert.equal(printable('\x1b[31mred\x1b[0m'), '\\x1b[31mred\\x1b[0m');
    assert.equal(printable('a\rb\nc\td\x7f\x9b'), 'a\\x0db\\x0ac\\x09d\\x7f\\x9b');
    assert.equal(printable('abc\u202edcba'), 'abc\\u202edcba');
    assert.equal(printable('Café 😀 <b>'), 'Café 😀 <b>');
    assert.equal(printableLines('one \x1b[2J\ntwo'), 'one \\x1b[2J\ntwo');
    assert.equal(quoted('x\ny'), "'x\\x0ay'");
  });
  it('escapes markup for HTML and SVG', () => {
    assert.equal(
      escapeHtml(`<script>alert("1" & '2')</script>\x1b`),
      '&lt;script&gt;alert(&quot;1&quot; &amp; &#39;2&#39;)&lt;/script&gt;\\x1b',
    );
  });
});
