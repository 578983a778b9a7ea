//! JSON filter patterns: `{ <expr> }` where an expression compares selectors (`$.a.b`,
//! `$.list[0]`) with strings (`*` wildcards), numbers, `IS NULL`, `IS TRUE`/`IS FALSE` and
//! `NOT EXISTS`, joined by `&&` (binding tighter) and `||`, grouped by parentheses.

use super::Lexer;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
        let mut lexer = Lexer::new(s);
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

/// The members and elements an expression's selectors reach, as a tree: decoding a message
/// keeps only these (the rest is skipped without being built).
#[derive(Debug, Clone, Default)]
pub(crate) struct Wanted {
    members: Vec<(String, Wanted)>,
    indexes: Vec<(usize, Wanted)>,
    /// A selector ends here: the value is kept whole.
    whole: bool,
}

impl Wanted {
    fn add(&mut self, steps: &[Step]) {
        let Some((first, rest)) = steps.split_first() else {
            self.whole = true;
            return;
        };
        let child = match first {
            Step::Member(m) => match self.members.iter().position(|(k, _)| k == m) {
                Some(i) => &mut self.members[i].1,
                None => {
                    self.members.push((m.clone(), Wanted::default()));
                    &mut self.members.last_mut().expect("just pushed").1
                }
            },
            Step::Index(n) => match self.indexes.iter().position(|(k, _)| k == n) {
                Some(i) => &mut self.indexes[i].1,
                None => {
                    self.indexes.push((*n, Wanted::default()));
                    &mut self.indexes.last_mut().expect("just pushed").1
                }
            },
        };
        child.add(rest);
    }

    /// The message as a JSON object holding only what the selectors reach, if it is one.
    pub(crate) fn document(&self, message: &str) -> Option<Value> {
        if !message.trim_start().starts_with('{') {
            return None;
        }
        let mut de = serde_json::Deserializer::from_str(message);
        let doc = self.deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(doc).filter(Value::is_object)
    }
}

impl<'de> DeserializeSeed<'de> for &Wanted {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.whole {
            return serde::Deserialize::deserialize(d);
        }
        d.deserialize_any(self)
    }
}

/// A member name, matched against the wanted ones without being copied.
struct Key<'w>(&'w Wanted);

impl<'de, 'w> DeserializeSeed<'de> for Key<'w> {
    type Value = Option<(String, &'w Wanted)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'w> Visitor<'_> for Key<'w> {
    type Value = Option<(String, &'w Wanted)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.members.iter().find(|(k, _)| k == v).map(|(k, w)| (k.clone(), w)))
    }
}

impl<'de> Visitor<'de> for &Wanted {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key_seed(Key(self))? {
            match key {
                Some((name, child)) => {
                    let v = map.next_value_seed(child)?;
                    out.insert(name, v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Elements not wanted stand as nulls up to the last wanted one, so indexes still hold.
        let last = self.indexes.iter().map(|(i, _)| *i).max();
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let wanted = self.indexes.iter().find(|(n, _)| *n == i).map(|(_, w)| w);
            let more = match wanted {
                Some(w) => seq.next_element_seed(w)?.map(|v| out.push(v)).is_some(),
                None if last.is_some_and(|l| i < l) => seq.next_element::<IgnoredAny>()?.map(|_| out.push(Value::Null)).is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(Value::Array(out));
            }
            i += 1;
        }
    }
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
        let mut lexer = Lexer::new(body);
        let e = lexer.or()?;
        lexer.skip_ws();
        if lexer.pos != body.len() {
            return Err(PatternError);
        }
        Ok(e)
    }

    /// What the expression's selectors reach.
    pub(crate) fn wanted(&self) -> Wanted {
        let mut w = Wanted::default();
        self.selectors(&mut |s| w.add(&s.0));
        w
    }

    fn selectors(&self, f: &mut impl FnMut(&Selector)) {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.selectors(f);
                b.selectors(f);
            }
            Expr::Cond(s, _) => f(s),
        }
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

impl<'a> Lexer<'a> {
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
