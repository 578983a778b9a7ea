//! Condition and filter expressions: the grammar (comparisons, `BETWEEN`, `IN`, functions,
//! `NOT` over `AND` over `OR`, parentheses), DynamoDB's checks on a parsed condition in its
//! order, and evaluation against an item (a missing attribute or a type mismatch makes a
//! comparison false, never an error).

use std::borrow::Cow;
use std::cmp::Ordering;

use super::lexer::{furthest, Cursor, PResult, SyntaxError, Tok};
use super::path::{RawPath, RANK_UNDEFINED_NAME};
use super::{check_text, ExprError, ExpressionKind, Findings, Placeholders, Reason, MAX_IN_OPERANDS, MAX_OPERATORS};
use crate::value::{AttributeValue, Item, ValueType};

// Ranks of the condition checks (dynalite `conditionParser.pegjs` `checkErrors`: parens,
// unknown function, misused function, reserved word, then per condition: undefined
// placeholder, operand count, distinct operands, operand types).
const RANK_PARENS: u8 = 10;
const RANK_UNKNOWN_FUNCTION: u8 = 20;
const RANK_MISUSED_FUNCTION: u8 = 25;
const RANK_OPERAND_COUNT: u8 = 50;
const RANK_DISTINCT: u8 = 60;
const RANK_FUNCTION: u8 = 70;
const RANK_LIMITS: u8 = 80;

/// A comparator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn from_tok(tok: Tok) -> Option<CmpOp> {
        Some(match tok {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Path(RawPath),
    Value { key: String, value: Option<AttributeValue> },
    Func(Func),
    Paren(Box<Operand>),
}

#[derive(Clone, Debug)]
pub(crate) struct Func {
    pub name: String,
    pub args: Vec<Operand>,
}

#[derive(Clone, Debug)]
pub(crate) enum Cond {
    Or(Box<Cond>, Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Paren(Box<Cond>),
    Compare(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Func(Func),
}

impl Operand {
    /// Without its parentheses.
    pub fn bare(&self) -> &Operand {
        match self {
            Operand::Paren(inner) => inner.bare(),
            other => other,
        }
    }

    /// The type an operand is known to have before evaluation (values; `size` is a number).
    fn known_type(&self) -> Option<ValueType> {
        match self.bare() {
            Operand::Value { value: Some(v), .. } => Some(v.value_type()),
            Operand::Func(f) if f.name == "size" => Some(ValueType::N),
            _ => None,
        }
    }

    pub fn value(&self) -> Option<&AttributeValue> {
        match self.bare() {
            Operand::Value { value, .. } => value.as_ref(),
            _ => None,
        }
    }

    pub fn raw_path(&self) -> Option<&RawPath> {
        match self.bare() {
            Operand::Path(p) => Some(p),
            _ => None,
        }
    }
}

// ---- parsing ----

fn starts_comparison(c: &Cursor<'_>) -> bool {
    CmpOp::from_tok(c.peek()).is_some() || c.is_keyword("BETWEEN") || c.is_keyword("IN")
}

const KEYWORDS: [&str; 5] = ["AND", "OR", "NOT", "BETWEEN", "IN"];

fn is_keyword_token(c: &Cursor<'_>) -> bool {
    c.peek() == Tok::Ident && KEYWORDS.iter().any(|k| c.text().eq_ignore_ascii_case(k))
}

pub(crate) fn parse_tree(c: &mut Cursor<'_>) -> PResult<Cond> {
    let cond = parse_or(c)?;
    if c.peek() != Tok::Eof {
        return c.fail();
    }
    Ok(cond)
}

fn parse_or(c: &mut Cursor<'_>) -> PResult<Cond> {
    let mut left = parse_and(c)?;
    while c.is_keyword("OR") {
        c.advance();
        let right = parse_and(c)?;
        left = Cond::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_and(c: &mut Cursor<'_>) -> PResult<Cond> {
    let mut left = parse_not(c)?;
    while c.is_keyword("AND") {
        c.advance();
        let right = parse_not(c)?;
        left = Cond::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_not(c: &mut Cursor<'_>) -> PResult<Cond> {
    if c.is_keyword("NOT") {
        c.advance();
        return Ok(Cond::Not(Box::new(parse_not(c)?)));
    }
    parse_primary(c)
}

fn parse_group(c: &mut Cursor<'_>) -> PResult<Cond> {
    c.expect(Tok::LParen)?;
    let inner = parse_or(c)?;
    c.expect(Tok::RParen)?;
    Ok(Cond::Paren(Box::new(inner)))
}

fn parse_primary(c: &mut Cursor<'_>) -> PResult<Cond> {
    if c.peek() != Tok::LParen {
        return parse_comparison(c);
    }
    // `(` opens either a condition or an operand (`(a) = :v`, `(size(a)) > :v`): try the
    // condition, and read an operand when that fails or a comparator follows it.
    let save = c.pos;
    let group = parse_group(c);
    if let Ok(cond) = &group {
        if !starts_comparison(c) {
            return Ok(cond.clone());
        }
    }
    let group_error = group.err();
    c.pos = save;
    match parse_comparison(c) {
        Ok(cond) => Ok(cond),
        Err(e) => Err(group_error.map_or(e, |g| furthest(g, e))),
    }
}

fn parse_comparison(c: &mut Cursor<'_>) -> PResult<Cond> {
    let left = parse_operand(c)?;
    if let Some(op) = CmpOp::from_tok(c.peek()) {
        c.advance();
        let right = parse_operand(c)?;
        return Ok(Cond::Compare(op, left, right));
    }
    if c.is_keyword("BETWEEN") {
        c.advance();
        let low = parse_operand(c)?;
        if !c.is_keyword("AND") {
            return c.fail();
        }
        c.advance();
        let high = parse_operand(c)?;
        return Ok(Cond::Between(left, low, high));
    }
    if c.is_keyword("IN") {
        c.advance();
        c.expect(Tok::LParen)?;
        let list = parse_list(c)?;
        c.expect(Tok::RParen)?;
        return Ok(Cond::In(left, list));
    }
    match left {
        Operand::Func(f) => Ok(Cond::Func(f)),
        _ => c.fail(),
    }
}

fn parse_list(c: &mut Cursor<'_>) -> PResult<Vec<Operand>> {
    let mut list = vec![parse_operand(c)?];
    while c.peek() == Tok::Comma {
        c.advance();
        list.push(parse_operand(c)?);
    }
    Ok(list)
}

fn parse_operand(c: &mut Cursor<'_>) -> PResult<Operand> {
    match c.peek() {
        Tok::LParen => {
            c.advance();
            let inner = parse_operand(c)?;
            c.expect(Tok::RParen)?;
            Ok(Operand::Paren(Box::new(inner)))
        }
        Tok::Value => {
            let key = c.text().to_string();
            c.advance();
            Ok(Operand::Value { key, value: None })
        }
        Tok::Ident if is_keyword_token(c) => c.fail(),
        Tok::Ident if c.peek_at(1) == Tok::LParen => {
            let name = c.text().to_string();
            c.advance();
            c.advance();
            let args = parse_list(c)?;
            c.expect(Tok::RParen)?;
            Ok(Operand::Func(Func { name, args }))
        }
        Tok::Ident | Tok::Name => Ok(Operand::Path(RawPath::parse(c)?)),
        _ => c.fail(),
    }
}

/// Parses `text` and runs DynamoDB's checks, substituting placeholders: the shared front half
/// of [`Condition::parse`] and [`super::KeyCondition::parse`].
pub(crate) fn parse_checked(text: &str, kind: ExpressionKind, placeholders: &mut Placeholders) -> Result<Cond, ExprError> {
    check_text(kind, text)?;
    let mut cursor = Cursor::new(text);
    let mut cond = parse_tree(&mut cursor).map_err(|e: SyntaxError| ExprError::Invalid { kind, reason: cursor.reason(e) })?;
    let mut checker = Checker { placeholders, findings: Findings::default(), operators: 0 };
    checker.cond(&mut cond);
    if checker.operators > MAX_OPERATORS {
        checker.findings.add(RANK_LIMITS, Reason::TooManyOperators(checker.operators));
    }
    match checker.findings.first() {
        Some(reason) => Err(ExprError::Invalid { kind, reason }),
        None => Ok(cond),
    }
}

// ---- checks ----

struct Checker<'p> {
    placeholders: &'p mut Placeholders,
    findings: Findings,
    operators: usize,
}

const FUNCTIONS: [(&str, usize); 6] =
    [("attribute_exists", 1), ("attribute_not_exists", 1), ("attribute_type", 2), ("begins_with", 2), ("contains", 2), ("size", 1)];

impl Checker<'_> {
    fn cond(&mut self, cond: &mut Cond) {
        match cond {
            Cond::Or(a, b) | Cond::And(a, b) => {
                self.operators += 1;
                self.cond(a);
                self.cond(b);
            }
            Cond::Not(a) => {
                self.operators += 1;
                self.cond(a);
            }
            Cond::Paren(inner) => {
                if matches!(**inner, Cond::Paren(_)) {
                    self.findings.add(RANK_PARENS, Reason::RedundantParentheses);
                }
                self.cond(inner);
            }
            Cond::Compare(op, a, b) => {
                self.operators += 1;
                self.operand(a, true);
                self.operand(b, true);
                self.distinct(op.symbol(), a, b);
            }
            Cond::Between(x, low, high) => {
                self.operators += 1;
                for operand in [&mut *x, &mut *low, &mut *high] {
                    self.operand(operand, true);
                }
                if let (Some(l), Some(h)) = (low.value(), high.value()) {
                    if l.value_type() != h.value_type() {
                        self.findings.add(RANK_FUNCTION, Reason::BetweenTypes { lower: l.brief(), upper: h.brief() });
                    } else if l.compare(h) == Some(Ordering::Greater) {
                        self.findings.add(RANK_FUNCTION, Reason::BetweenOrder { lower: l.brief(), upper: h.brief() });
                    }
                }
            }
            Cond::In(x, list) => {
                self.operators += 1;
                self.operand(x, true);
                for operand in list.iter_mut() {
                    self.operand(operand, true);
                }
                if list.len() > MAX_IN_OPERANDS {
                    self.findings.add(RANK_LIMITS, Reason::TooManyInOperands(list.len()));
                }
            }
            Cond::Func(f) => {
                if f.name == "size" {
                    self.findings.add(RANK_MISUSED_FUNCTION, Reason::MisusedFunction(f.name.clone()));
                }
                self.function(f);
            }
        }
    }

    /// `as_value`: the operand is compared or passed on, where only `size` may be a function.
    fn operand(&mut self, operand: &mut Operand, as_value: bool) {
        match operand {
            Operand::Paren(inner) => {
                if matches!(**inner, Operand::Paren(_)) {
                    self.findings.add(RANK_PARENS, Reason::RedundantParentheses);
                }
                self.operand(inner, as_value);
            }
            Operand::Path(path) => {
                path.check_reserved(&mut self.findings);
                path.resolve(self.placeholders, &mut self.findings, RANK_UNDEFINED_NAME);
            }
            Operand::Value { key, value } => match self.placeholders.value(key) {
                Some(v) => {
                    *value = Some(v.clone());
                    self.placeholders.mark_value(key);
                }
                None => self.findings.add(RANK_UNDEFINED_NAME, Reason::UndefinedValue(key.clone())),
            },
            Operand::Func(f) => {
                if as_value && f.name != "size" && FUNCTIONS.iter().any(|(n, _)| *n == f.name) {
                    self.findings.add(RANK_MISUSED_FUNCTION, Reason::MisusedFunction(f.name.clone()));
                }
                self.function(f);
            }
        }
    }

    fn function(&mut self, f: &mut Func) {
        self.operators += 1;
        let Some(&(_, arity)) = FUNCTIONS.iter().find(|(n, _)| *n == f.name) else {
            self.findings.add(RANK_UNKNOWN_FUNCTION, Reason::UnknownFunction(f.name.clone()));
            for arg in f.args.iter_mut() {
                self.operand(arg, true);
            }
            return;
        };
        for arg in f.args.iter_mut() {
            self.operand(arg, true);
        }
        if f.args.len() != arity {
            self.findings.add(RANK_OPERAND_COUNT, Reason::OperandCount { function: f.name.clone(), count: f.args.len() });
            return;
        }
        if arity == 2 {
            self.distinct(&f.name.clone(), &f.args[0], &f.args[1]);
        }
        let wrong_type = |function: &str, t: &str| Reason::OperandType { function: function.to_string(), operand: t.to_string() };
        match f.name.as_str() {
            "attribute_exists" | "attribute_not_exists" if f.args[0].raw_path().is_none() => {
                self.findings.add(RANK_FUNCTION, Reason::RequiresPath(f.name.clone()));
            }
            "begins_with" => {
                for arg in &f.args {
                    if let Some(t) = arg.known_type() {
                        if t != ValueType::S && t != ValueType::B {
                            self.findings.add(RANK_FUNCTION, wrong_type("begins_with", t.name()));
                            break;
                        }
                    }
                }
            }
            "attribute_type" => match f.args[1].value() {
                Some(AttributeValue::S(name)) => {
                    if ValueType::from_name(name).is_none() {
                        self.findings.add(RANK_FUNCTION, Reason::InvalidTypeName(name.clone()));
                    }
                }
                Some(other) => self.findings.add(RANK_FUNCTION, wrong_type("attribute_type", other.value_type().name())),
                None => {
                    let t = f.args[1].known_type().map_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}", ValueType::name);
                    self.findings.add(RANK_FUNCTION, wrong_type("attribute_type", t));
                }
            },
            "size" => {
                if let Some(t @ (ValueType::N | ValueType::Bool | ValueType::Null)) = f.args[0].known_type() {
                    self.findings.add(RANK_FUNCTION, wrong_type("size", t.name()));
                }
            }
            _ => {}
        }
    }

    fn distinct(&mut self, operator: &str, a: &Operand, b: &Operand) {
        if let (Some(a), Some(b)) = (a.raw_path(), b.raw_path()) {
            if let (Some(pa), Some(pb)) = (&a.resolved, &b.resolved) {
                if pa == pb {
                    self.findings.add(RANK_DISTINCT, Reason::NotDistinct { operator: operator.to_string(), operand: pa.to_string() });
                }
            }
        }
    }
}

// ---- evaluation ----

fn operand_value<'a>(operand: &'a Operand, item: &'a Item) -> Option<Cow<'a, AttributeValue>> {
    match operand {
        Operand::Paren(inner) => operand_value(inner, item),
        Operand::Path(path) => path.path().get(item).map(Cow::Borrowed),
        Operand::Value { value, .. } => value.as_ref().map(Cow::Borrowed),
        Operand::Func(f) if f.name == "size" => {
            let size = match operand_value(&f.args[0], item)?.as_ref() {
                AttributeValue::S(s) => s.len(),
                AttributeValue::B(b) => b.len(),
                AttributeValue::SS(s) => s.len(),
                AttributeValue::NS(s) => s.len(),
                AttributeValue::BS(s) => s.len(),
                AttributeValue::L(l) => l.len(),
                AttributeValue::M(m) => m.len(),
                _ => return None,
            };
            Some(Cow::Owned(AttributeValue::N((size as i64).into())))
        }
        Operand::Func(_) => None,
    }
}

pub(crate) fn evaluate(cond: &Cond, item: &Item) -> bool {
    match cond {
        Cond::Or(a, b) => evaluate(a, item) || evaluate(b, item),
        Cond::And(a, b) => evaluate(a, item) && evaluate(b, item),
        Cond::Not(a) => !evaluate(a, item),
        Cond::Paren(a) => evaluate(a, item),
        Cond::Compare(op, a, b) => {
            let (a, b) = (operand_value(a, item), operand_value(b, item));
            match op {
                CmpOp::Eq => matches!((&a, &b), (Some(a), Some(b)) if a == b),
                CmpOp::Ne => !matches!((&a, &b), (Some(a), Some(b)) if a == b),
                _ => {
                    let (Some(a), Some(b)) = (a, b) else { return false };
                    let Some(order) = a.compare(&b) else { return false };
                    match op {
                        CmpOp::Lt => order == Ordering::Less,
                        CmpOp::Le => order != Ordering::Greater,
                        CmpOp::Gt => order == Ordering::Greater,
                        _ => order != Ordering::Less,
                    }
                }
            }
        }
        Cond::Between(x, low, high) => {
            let (Some(x), Some(low), Some(high)) = (operand_value(x, item), operand_value(low, item), operand_value(high, item)) else {
                return false;
            };
            matches!(x.compare(&low), Some(Ordering::Greater | Ordering::Equal))
                && matches!(x.compare(&high), Some(Ordering::Less | Ordering::Equal))
        }
        Cond::In(x, list) => {
            let Some(x) = operand_value(x, item) else { return false };
            list.iter().any(|candidate| operand_value(candidate, item).is_some_and(|c| c == x))
        }
        Cond::Func(f) => function(f, item),
    }
}

fn function(f: &Func, item: &Item) -> bool {
    let arg = |i: usize| operand_value(&f.args[i], item);
    match f.name.as_str() {
        "attribute_exists" => arg(0).is_some(),
        "attribute_not_exists" => arg(0).is_none(),
        "attribute_type" => match (arg(0), arg(1)) {
            (Some(v), Some(t)) => matches!(t.as_ref(), AttributeValue::S(name) if name == v.value_type().name()),
            _ => false,
        },
        "begins_with" => match (arg(0), arg(1)) {
            (Some(a), Some(b)) => match (a.as_ref(), b.as_ref()) {
                (AttributeValue::S(a), AttributeValue::S(b)) => a.starts_with(b.as_str()),
                (AttributeValue::B(a), AttributeValue::B(b)) => a.starts_with(b),
                _ => false,
            },
            _ => false,
        },
        "contains" => match (arg(0), arg(1)) {
            (Some(a), Some(b)) => match (a.as_ref(), b.as_ref()) {
                (AttributeValue::S(a), AttributeValue::S(b)) => a.contains(b.as_str()),
                (AttributeValue::B(a), AttributeValue::B(b)) => b.is_empty() || a.windows(b.len()).any(|w| w == b.as_slice()),
                (AttributeValue::SS(set), AttributeValue::S(b)) => set.contains(b),
                (AttributeValue::NS(set), AttributeValue::N(b)) => set.contains(b),
                (AttributeValue::BS(set), AttributeValue::B(b)) => set.contains(b),
                (AttributeValue::L(list), b) => list.iter().any(|e| e == b),
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// A parsed `ConditionExpression` or `FilterExpression`, placeholders substituted.
#[derive(Clone, Debug)]
pub struct Condition {
    root: Cond,
}

impl Condition {
    /// Parses and checks `text` as DynamoDB does; `kind` (`Condition` or `Filter`) names the
    /// parameter in errors. Marks the placeholders it uses.
    pub fn parse(text: &str, kind: ExpressionKind, placeholders: &mut Placeholders) -> Result<Condition, ExprError> {
        Ok(Condition { root: parse_checked(text, kind, placeholders)? })
    }

    /// Whether `item` satisfies the condition (a missing item is an empty one).
    pub fn evaluate(&self, item: &Item) -> bool {
        evaluate(&self.root, item)
    }

    /// The top-level attribute of every path the condition names, in the order written.
    pub fn attributes(&self) -> Vec<&str> {
        fn operand<'a>(o: &'a Operand, out: &mut Vec<&'a str>) {
            match o {
                Operand::Path(p) => out.push(p.path().attribute()),
                Operand::Value { .. } => {}
                Operand::Func(f) => f.args.iter().for_each(|a| operand(a, out)),
                Operand::Paren(inner) => operand(inner, out),
            }
        }
        fn cond<'a>(c: &'a Cond, out: &mut Vec<&'a str>) {
            match c {
                Cond::Or(a, b) | Cond::And(a, b) => {
                    cond(a, out);
                    cond(b, out);
                }
                Cond::Not(inner) | Cond::Paren(inner) => cond(inner, out),
                Cond::Compare(_, a, b) => [a, b].into_iter().for_each(|o| operand(o, out)),
                Cond::Between(a, b, c) => [a, b, c].into_iter().for_each(|o| operand(o, out)),
                Cond::In(a, list) => std::iter::once(a).chain(list).for_each(|o| operand(o, out)),
                Cond::Func(f) => f.args.iter().for_each(|a| operand(a, out)),
            }
        }
        let mut out = Vec::new();
        cond(&self.root, &mut out);
        out
    }
}
