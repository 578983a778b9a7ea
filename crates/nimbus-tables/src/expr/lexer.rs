//! Tokens of DynamoDB's expressions and the cursor the parsers share, which words a syntax
//! error as DynamoDB does: the offending token (`<EOF>` at the end) and the source from the
//! token before it to the token after it.

use super::Reason;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// `[A-Za-z_][A-Za-z0-9_]*`: an attribute name, a function name or a keyword.
    Ident,
    /// `#[A-Za-z0-9_]+`.
    Name,
    /// `:[A-Za-z0-9_]+`.
    Value,
    /// `[0-9]+` (only valid as a list index).
    Number,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// Any other character (`!`, a lone `#` or `:`, …): always a syntax error.
    Other,
    Eof,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
            continue;
        }
        let start = i;
        let word_end = |from: usize| {
            let mut j = from;
            while j < bytes.len() && is_word(bytes[j]) {
                j += 1;
            }
            j
        };
        let (kind, end) = match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => (Tok::Ident, word_end(i)),
            b'0'..=b'9' => {
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                (Tok::Number, j)
            }
            b'#' | b':' => {
                let j = word_end(i + 1);
                match (j > i + 1, b) {
                    (true, b'#') => (Tok::Name, j),
                    (true, _) => (Tok::Value, j),
                    (false, _) => (Tok::Other, i + 1),
                }
            }
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'[' => (Tok::LBracket, i + 1),
            b']' => (Tok::RBracket, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'.' => (Tok::Dot, i + 1),
            b'=' => (Tok::Eq, i + 1),
            b'+' => (Tok::Plus, i + 1),
            b'-' => (Tok::Minus, i + 1),
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => (Tok::Ne, i + 2),
                Some(b'=') => (Tok::Le, i + 2),
                _ => (Tok::Lt, i + 1),
            },
            b'>' => match bytes.get(i + 1) {
                Some(b'=') => (Tok::Ge, i + 2),
                _ => (Tok::Gt, i + 1),
            },
            _ => {
                let len = src[i..].chars().next().map_or(1, char::len_utf8);
                (Tok::Other, i + len)
            }
        };
        tokens.push(Token { kind, start, end });
        i = end;
    }
    tokens.push(Token { kind: Tok::Eof, start: src.len(), end: src.len() });
    tokens
}

/// A position in the token list where parsing failed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SyntaxError {
    pub at: usize,
}

pub(crate) type PResult<T> = Result<T, SyntaxError>;

/// Of two failed alternatives, the one that got further (PEG's rule for what to report).
pub(crate) fn furthest(a: SyntaxError, b: SyntaxError) -> SyntaxError {
    if b.at > a.at {
        b
    } else {
        a
    }
}

pub(crate) struct Cursor<'a> {
    pub src: &'a str,
    pub tokens: Vec<Token>,
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str) -> Cursor<'a> {
        Cursor { src, tokens: tokenize(src), pos: 0 }
    }

    pub fn peek(&self) -> Tok {
        self.tokens[self.pos].kind
    }

    pub fn peek_at(&self, ahead: usize) -> Tok {
        self.tokens.get(self.pos + ahead).map_or(Tok::Eof, |t| t.kind)
    }

    pub fn text(&self) -> &'a str {
        let t = self.tokens[self.pos];
        &self.src[t.start..t.end]
    }

    /// Whether the current token is the keyword `word` (any case).
    pub fn is_keyword(&self, word: &str) -> bool {
        self.peek() == Tok::Ident && self.text().eq_ignore_ascii_case(word)
    }

    pub fn advance(&mut self) {
        if self.peek() != Tok::Eof {
            self.pos += 1;
        }
    }

    pub fn fail<T>(&self) -> PResult<T> {
        Err(SyntaxError { at: self.pos })
    }

    pub fn expect(&mut self, kind: Tok) -> PResult<()> {
        if self.peek() == kind {
            self.advance();
            Ok(())
        } else {
            self.fail()
        }
    }

    /// DynamoDB's wording of a syntax error at token `at`.
    pub fn reason(&self, error: SyntaxError) -> Reason {
        let at = error.at.min(self.tokens.len() - 1);
        let token = self.tokens[at];
        let from = if at > 0 { self.tokens[at - 1].start } else { token.start };
        let (text, to) = if token.kind == Tok::Eof {
            ("<EOF>".to_string(), if at > 0 { self.tokens[at - 1].end } else { token.end })
        } else {
            let next = self.tokens[at + 1];
            let to = if next.kind == Tok::Eof { token.end } else { next.end };
            (self.src[token.start..token.end].to_string(), to)
        };
        Reason::Syntax { token: text, near: self.src[from..to].to_string() }
    }
}
