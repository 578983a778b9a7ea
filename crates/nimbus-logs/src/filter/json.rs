//! JSON filter patterns: `{ <expr> }` where an expression compares selectors (`$.a.b`,
//! `$.list[0]`) with strings (`*` wildcards), numbers, `IS NULL`, `IS TRUE`/`IS FALSE` and
//! `NOT EXISTS`, joined by `&&` (binding tighter) and `||`, grouped by parentheses.

use serde_json::Value;

use super::{Op, Operand, PatternError};

/// One step of a selector: a member or an array index.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Member(String),
    Index(usize),
}

/// `$.a.b[0]`: where a value is found in a document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selector(Vec<Step>);

impl Selector {
    /// A whole selector (as metric values and dimensions name them).
    pub(crate) fn parse(s: &str) -> Result<Selector, PatternError> {
        let mut lexer = Lexer { s, pos: 0 };
        let sel = lexer.selector()?;
        if lexer.pos != s.len() {
            return Err(PatternError);
        }
        Ok(sel)
    }

    pub(crate) fn resolve<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        self.0.iter().try_fold(doc, |v, step| match step {
            Step::Member(m) => v.as_object()?.get(m),
            Step::Index(i) => v.as_array()?.get(*i),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Compare(Op, Operand),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

/// A parsed JSON pattern expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Cond(Selector, Test),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// The message as a JSON object, if it is one.
pub(crate) fn document(message: &str) -> Option<Value> {
    if !message.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Value>(message).ok().filter(Value::is_object)
}

impl Expr {
    /// Parses what is between a pattern's braces.
    pub(crate) fn parse(body: &str) -> Result<Expr, PatternError> {
        let mut lexer = Lexer { s: body, pos: 0 };
        let e = lexer.or()?;
        lexer.skip_ws();
        if lexer.pos != body.len() {
            return Err(PatternError);
        }
        Ok(e)
    }

    pub(crate) fn eval(&self, doc: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.eval(doc) && b.eval(doc),
            Expr::Or(a, b) => a.eval(doc) || b.eval(doc),
            Expr::Cond(sel, test) => {
                let v = sel.resolve(doc);
                match test {
                    Test::NotExists => v.is_none(),
                    Test::IsNull => v.is_some_and(Value::is_null),
                    Test::IsTrue => v == Some(&Value::Bool(true)),
                    Test::IsFalse => v == Some(&Value::Bool(false)),
                    Test::Compare(op, operand) => match v {
                        Some(Value::String(s)) => match operand {
                            // A number compares with numbers only.
                            Operand::Number(_) => false,
                            Operand::Text(_) => operand.compare(*op, s, None),
                        },
                        Some(Value::Number(n)) => operand.compare(*op, &n.to_string(), n.as_f64()),
                        Some(Value::Bool(b)) => operand.compare(*op, if *b { "true" } else { "false" }, None),
                        _ => false,
                    },
                }
            }
        }
    }

    /// Literals every matching document contains: those of the `=` string comparisons that
    /// must all hold.
    pub(crate) fn required(&self) -> Vec<String> {
        match self {
            Expr::And(a, b) => {
                let mut out = a.required();
                out.extend(b.required());
                out
            }
            Expr::Or(..) => Vec::new(),
            Expr::Cond(_, Test::Compare(op, operand)) => operand.literals(*op),
            Expr::Cond(..) => Vec::new(),
        }
    }
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// A keyword, as a whole word.
    fn eat_word(&mut self, word: &str) -> bool {
        self.skip_ws();
        let r = self.rest();
        if r.starts_with(word) && r[word.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric() && c != '_') {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, PatternError> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, PatternError> {
        let mut e = self.unary()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, PatternError> {
        if self.eat("(") {
            let e = self.or()?;
            if !self.eat(")") {
                return Err(PatternError);
            }
            return Ok(e);
        }
        self.skip_ws();
        let sel = self.selector()?;
        if self.eat_word("IS") {
            let test = if self.eat_word("NULL") {
                Test::IsNull
            } else if self.eat_word("TRUE") {
                Test::IsTrue
            } else if self.eat_word("FALSE") {
                Test::IsFalse
            } else {
                return Err(PatternError);
            };
            return Ok(Expr::Cond(sel, test));
        }
        if self.eat_word("NOT") {
            return if self.eat_word("EXISTS") { Ok(Expr::Cond(sel, Test::NotExists)) } else { Err(PatternError) };
        }
        self.skip_ws();
        let (op, len) = Op::lex(self.rest()).ok_or(PatternError)?;
        self.pos += len;
        let operand = self.operand()?;
        Ok(Expr::Cond(sel, Test::Compare(op, operand)))
    }

    /// `$` then `.member` and `[index]` steps (at least one).
    fn selector(&mut self) -> Result<Selector, PatternError> {
        if !self.rest().starts_with('$') {
            return Err(PatternError);
        }
        self.pos += 1;
        let mut steps = Vec::new();
        loop {
            let r = self.rest();
            if let Some(after) = r.strip_prefix('.') {
                let len = after.find(|c: char| c.is_whitespace() || ".[]()=!<>&|\"".contains(c)).unwrap_or(after.len());
                if len == 0 {
                    return Err(PatternError);
                }
                steps.push(Step::Member(after[..len].to_string()));
                self.pos += 1 + len;
            } else if let Some(after) = r.strip_prefix('[') {
                let close = after.find(']').ok_or(PatternError)?;
                let index = after[..close].trim().parse().map_err(|_| PatternError)?;
                steps.push(Step::Index(index));
                self.pos += 1 + close + 1;
            } else {
                break;
            }
        }
        if steps.is_empty() {
            return Err(PatternError);
        }
        Ok(Selector(steps))
    }

    /// A quoted string, or a bare value (a number if it reads as one).
    fn operand(&mut self) -> Result<Operand, PatternError> {
        self.skip_ws();
        let r = self.rest();
        if let Some(after) = r.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = after.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.pos += 1 + i + 1;
                        return Ok(Operand::Text(out));
                    }
                    '\\' => out.push(chars.next().ok_or(PatternError)?.1),
                    c => out.push(c),
                }
            }
            return Err(PatternError);
        }
        let len = r.find(|c: char| c.is_whitespace() || "()&|\"".contains(c)).unwrap_or(r.len());
        if len == 0 {
            return Err(PatternError);
        }
        let word = &r[..len];
        if Op::lex(word).is_some() {
            return Err(PatternError);
        }
        self.pos += len;
        Ok(Operand::bare(word))
    }
}
