//! Tokens of the filter expression syntax, with their line and column.

use crate::{Error, Result};

/// Reserved words (matched case-insensitively); a key spelled like one needs backticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    And,
    Or,
    Not,
    In,
    Between,
    Matches,
    True,
    False,
}

const KEYWORDS: [(&str, Keyword); 8] = [
    ("and", Keyword::And),
    ("or", Keyword::Or),
    ("not", Keyword::Not),
    ("in", Keyword::In),
    ("between", Keyword::Between),
    ("matches", Keyword::Matches),
    ("true", Keyword::True),
    ("false", Keyword::False),
];

pub(super) fn keyword(word: &str) -> Option<Keyword> {
    KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(word)).map(|&(_, kw)| kw)
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A key path (`a.b[].c[0]`); `bare` when written without backticks (only a bare identifier can
    /// name a function).
    Key {
        text: String,
        bare: bool,
    },
    Str(String),
    /// A number as written, and the unit letters that follow it without a space (`5km`).
    Number {
        text: String,
        unit: String,
    },
    Kw(Keyword),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
    /// The source text of the token (empty at the end of input).
    pub text: String,
}

impl Token {
    /// How an error message names this token.
    pub fn describe(&self) -> String {
        if self.tok == Tok::Eof {
            return "end of input".into();
        }
        const MAX: usize = 32;
        if self.text.chars().count() > MAX {
            let head: String = self.text.chars().take(MAX).collect();
            format!("`{head}...`")
        } else {
            format!("`{}`", self.text)
        }
    }
}

pub(super) fn error_at(line: usize, col: usize, msg: impl std::fmt::Display) -> Error {
    Error::bad_input(format!("{line}:{col}: {msg}"))
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Length in chars of the key path at the start of `s` (0 if none): an identifier followed by
/// `[]`, `[digits]` and `.identifier` parts. The first identifier alone is returned for a keyword.
pub(super) fn path_len(s: &[char]) -> usize {
    let ident = |i: usize| -> usize {
        if i < s.len() && is_ident_start(s[i]) {
            let mut j = i + 1;
            while j < s.len() && is_ident_char(s[j]) {
                j += 1;
            }
            j
        } else {
            i
        }
    };
    let mut end = ident(0);
    if end == 0 {
        return 0;
    }
    let first: String = s[..end].iter().collect();
    if keyword(&first).is_some() {
        return end;
    }
    loop {
        if s.get(end) == Some(&'[') {
            let mut j = end + 1;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            if s.get(j) == Some(&']') {
                end = j + 1;
                continue;
            }
        }
        if s.get(end) == Some(&'.') {
            let j = ident(end + 1);
            if j > end + 1 {
                end = j;
                continue;
            }
        }
        return end;
    }
}

/// Whether `key` can be written without backticks.
pub(super) fn is_bare_key(key: &str) -> bool {
    let chars: Vec<char> = key.chars().collect();
    !chars.is_empty() && path_len(&chars) == chars.len() && keyword(key).is_none()
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, msg: impl std::fmt::Display) -> Error {
        error_at(self.line, self.col, msg)
    }

    fn string(&mut self) -> Result<String> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(error_at(line, col, "unterminated string"));
            };
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let (eline, ecol) = (self.line, self.col - 1);
                    let bad = || {
                        error_at(eline, ecol, "unknown escape; expected one of \\\" \\\\ \\n \\r \\t \\u{..}")
                    };
                    match self.bump() {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('t') => out.push('\t'),
                        Some('u') => {
                            if self.bump() != Some('{') {
                                return Err(bad());
                            }
                            let mut hex = String::new();
                            loop {
                                match self.bump() {
                                    Some('}') => break,
                                    Some(h) if h.is_ascii_hexdigit() && hex.len() < 6 => hex.push(h),
                                    _ => return Err(bad()),
                                }
                            }
                            let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                            out.push(c.ok_or_else(|| error_at(eline, ecol, "not a Unicode scalar value"))?);
                        }
                        _ => return Err(bad()),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn backtick_key(&mut self) -> Result<String> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(error_at(line, col, "unterminated `-quoted key")),
                Some('`') if self.peek(0) == Some('`') => {
                    self.bump();
                    out.push('`');
                }
                Some('`') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let mut n = 0;
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            n += 1;
        }
        n
    }

    fn number(&mut self) -> Tok {
        let start = self.pos;
        if self.peek(0) == Some('-') {
            self.bump();
        }
        self.digits();
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            self.digits();
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
                if sign == 1 {
                    self.bump();
                }
                self.digits();
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let unit_start = self.pos;
        while self.peek(0).is_some_and(is_ident_char) {
            self.bump();
        }
        let unit = self.chars[unit_start..self.pos].iter().collect();
        Tok::Number { text, unit }
    }

    fn next(&mut self) -> Result<Token> {
        while self.peek(0).is_some_and(char::is_whitespace) {
            self.bump();
        }
        let (line, col, start) = (self.line, self.col, self.pos);
        let Some(c) = self.peek(0) else {
            return Ok(Token { tok: Tok::Eof, line, col, text: String::new() });
        };
        let two = |l: &mut Lexer, tok: Tok| {
            l.bump();
            l.bump();
            tok
        };
        let one = |l: &mut Lexer, tok: Tok| {
            l.bump();
            tok
        };
        let tok = match (c, self.peek(1)) {
            ('"', _) => Tok::Str(self.string()?),
            ('`', _) => Tok::Key { text: self.backtick_key()?, bare: false },
            ('(', _) => one(self, Tok::LParen),
            (')', _) => one(self, Tok::RParen),
            ('[', _) => one(self, Tok::LBracket),
            (']', _) => one(self, Tok::RBracket),
            (',', _) => one(self, Tok::Comma),
            ('=', Some('=')) => two(self, Tok::Eq),
            ('=', _) => one(self, Tok::Eq),
            ('!', Some('=')) => two(self, Tok::Ne),
            ('<', Some('=')) => two(self, Tok::Le),
            ('<', Some('>')) => two(self, Tok::Ne),
            ('<', _) => one(self, Tok::Lt),
            ('>', Some('=')) => two(self, Tok::Ge),
            ('>', _) => one(self, Tok::Gt),
            ('-', Some(d)) if d.is_ascii_digit() => self.number(),
            (d, _) if d.is_ascii_digit() => self.number(),
            (c, _) if is_ident_start(c) => {
                let len = path_len(&self.chars[self.pos..]);
                let text: String = self.chars[self.pos..self.pos + len].iter().collect();
                for _ in 0..len {
                    self.bump();
                }
                match keyword(&text) {
                    Some(kw) => Tok::Kw(kw),
                    None => Tok::Key { text, bare: true },
                }
            }
            (c, _) => return Err(self.err(format!("unexpected character `{c}`"))),
        };
        let text = self.chars[start..self.pos].iter().collect();
        Ok(Token { tok, line, col, text })
    }
}

/// The tokens of `src`, ending with `Tok::Eof`.
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>> {
    let mut lexer = Lexer { chars: src.chars().collect(), pos: 0, line: 1, col: 1 };
    let mut out = Vec::new();
    loop {
        let t = lexer.next()?;
        let end = t.tok == Tok::Eof;
        out.push(t);
        if end {
            return Ok(out);
        }
    }
}
