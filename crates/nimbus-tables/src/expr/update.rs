//! Update expressions: `SET` (values, `+`/`-`, `if_not_exists`, `list_append`), `REMOVE`,
//! `ADD` and `DELETE`, each clause at most once; DynamoDB's checks in its order; and applying
//! one to an item all or nothing.

use std::borrow::Cow;

use super::condition::{Func, Operand};
use super::lexer::{furthest, Cursor, PResult, SyntaxError, Tok};
use super::path::{check_overlaps, Path, PathElement, RawPath};
use super::{check_text, ExprError, ExpressionKind, Findings, Placeholders, Reason, MAX_OPERATORS};
use crate::number::{Number, NumberError};
use crate::value::{AttributeValue, Item, ValueType};

// Ranks (dynalite `updateParser.pegjs` `checkErrors`: reserved, unknown function, section,
// attribute name, attribute value, overlap, conflict, operand, function). Reserved words are
// rank 30 (`path::RANK_RESERVED`).
const RANK_UNKNOWN_FUNCTION: u8 = 32;
const RANK_SECTION: u8 = 35;
const RANK_UNDEFINED_NAME: u8 = 40;
const RANK_UNDEFINED_VALUE: u8 = 45;
const RANK_OVERLAP: u8 = 50;
const RANK_CONFLICT: u8 = 55;
const RANK_OPERAND: u8 = 60;
const RANK_FUNCTION: u8 = 70;
const RANK_LIMITS: u8 = 80;

/// Why an update could not be applied to an item (a `ValidationException`; the item is left
/// as it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// A path operand (`SET a = b`, `b + :v`, `list_append(b, :l)`) that the item lacks.
    /// Text: dynalite `actions/updateItem.js` `resolveValue`.
    #[error("The provided expression refers to an attribute that does not exist in the item")]
    MissingAttribute,
    /// Arithmetic on a non-number, `list_append` on a non-list, `ADD`/`DELETE` on another type.
    /// Text: dynalite `actions/updateItem.js`, moto `IncorrectDataType`.
    #[error("An operand in the update expression has an incorrect data type")]
    IncorrectDataType,
    /// A path whose parent is missing or not a map/list as the path says. Text: dynalite
    /// `actions/updateItem.js`, moto `InvalidUpdateExpressionInvalidDocumentPath`.
    #[error("The document path provided in the update expression is invalid for update")]
    InvalidPath,
    /// A sum out of DynamoDB's number range or precision.
    #[error(transparent)]
    Number(#[from] NumberError),
}

#[derive(Clone, Debug)]
enum SetValue {
    Operand(Operand),
    Plus(Operand, Operand),
    Minus(Operand, Operand),
}

#[derive(Clone, Debug)]
enum Action {
    Set(RawPath, SetValue),
    Remove(RawPath),
    Add(RawPath, Operand),
    Delete(RawPath, Operand),
}

impl Action {
    fn path(&self) -> &RawPath {
        match self {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        }
    }
}

const SECTIONS: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];

fn section_keyword(c: &Cursor<'_>) -> Option<&'static str> {
    if c.peek() != Tok::Ident {
        return None;
    }
    SECTIONS.iter().copied().find(|s| c.text().eq_ignore_ascii_case(s))
}

fn parse_sections(c: &mut Cursor<'_>) -> PResult<Vec<(&'static str, Vec<Action>)>> {
    let mut sections = Vec::new();
    loop {
        let Some(section) = section_keyword(c) else { return c.fail() };
        c.advance();
        let mut actions = Vec::new();
        loop {
            actions.push(parse_action(c, section)?);
            if c.peek() != Tok::Comma {
                break;
            }
            c.advance();
        }
        sections.push((section, actions));
        if c.peek() == Tok::Eof {
            return Ok(sections);
        }
    }
}

fn parse_path(c: &mut Cursor<'_>) -> PResult<RawPath> {
    if section_keyword(c).is_some() {
        return c.fail();
    }
    RawPath::parse(c)
}

fn parse_value_ref(c: &mut Cursor<'_>) -> PResult<Operand> {
    if c.peek() != Tok::Value {
        return c.fail();
    }
    let key = c.text().to_string();
    c.advance();
    Ok(Operand::Value { key, value: None })
}

fn parse_action(c: &mut Cursor<'_>, section: &str) -> PResult<Action> {
    let path = parse_path(c)?;
    Ok(match section {
        "SET" => {
            c.expect(Tok::Eq)?;
            Action::Set(path, parse_set_value(c)?)
        }
        "REMOVE" => Action::Remove(path),
        "ADD" => Action::Add(path, parse_value_ref(c)?),
        _ => Action::Delete(path, parse_value_ref(c)?),
    })
}

fn parse_set_value(c: &mut Cursor<'_>) -> PResult<SetValue> {
    if c.peek() == Tok::LParen {
        // `(b + :v)`, or an operand in parentheses: try the first, fall back to the second.
        let save = c.pos;
        let grouped = (|| {
            c.advance();
            let value = parse_arithmetic(c)?;
            c.expect(Tok::RParen)?;
            Ok(value)
        })();
        match grouped {
            Ok(value) if !matches!(c.peek(), Tok::Plus | Tok::Minus) => return Ok(value),
            Ok(_) => c.pos = save,
            Err(e) => {
                c.pos = save;
                return parse_arithmetic(c).map_err(|e2: SyntaxError| furthest(e, e2));
            }
        }
    }
    parse_arithmetic(c)
}

fn parse_arithmetic(c: &mut Cursor<'_>) -> PResult<SetValue> {
    let left = parse_operand(c)?;
    match c.peek() {
        Tok::Plus => {
            c.advance();
            Ok(SetValue::Plus(left, parse_operand(c)?))
        }
        Tok::Minus => {
            c.advance();
            Ok(SetValue::Minus(left, parse_operand(c)?))
        }
        _ => Ok(SetValue::Operand(left)),
    }
}

fn parse_operand(c: &mut Cursor<'_>) -> PResult<Operand> {
    match c.peek() {
        Tok::LParen => {
            c.advance();
            let inner = parse_operand(c)?;
            c.expect(Tok::RParen)?;
            Ok(Operand::Paren(Box::new(inner)))
        }
        Tok::Value => parse_value_ref(c),
        Tok::Ident if section_keyword(c).is_some() => c.fail(),
        Tok::Ident if c.peek_at(1) == Tok::LParen => {
            let name = c.text().to_string();
            c.advance();
            c.advance();
            let mut args = vec![parse_operand(c)?];
            while c.peek() == Tok::Comma {
                c.advance();
                args.push(parse_operand(c)?);
            }
            c.expect(Tok::RParen)?;
            Ok(Operand::Func(Func { name, args }))
        }
        Tok::Ident | Tok::Name => Ok(Operand::Path(RawPath::parse(c)?)),
        _ => c.fail(),
    }
}

struct Checker<'p> {
    placeholders: &'p mut Placeholders,
    findings: Findings,
    operators: usize,
}

impl Checker<'_> {
    fn path(&mut self, path: &mut RawPath) {
        path.check_reserved(&mut self.findings);
        path.resolve(self.placeholders, &mut self.findings, RANK_UNDEFINED_NAME);
    }

    fn operand(&mut self, operand: &mut Operand) {
        match operand {
            Operand::Paren(inner) => self.operand(inner),
            Operand::Path(path) => self.path(path),
            Operand::Value { key, value } => match self.placeholders.value(key) {
                Some(v) => {
                    *value = Some(v.clone());
                    self.placeholders.mark_value(key);
                }
                None => self.findings.add(RANK_UNDEFINED_VALUE, Reason::UndefinedValue(key.clone())),
            },
            Operand::Func(f) => {
                self.operators += 1;
                for arg in f.args.iter_mut() {
                    self.operand(arg);
                }
                self.function(f);
            }
        }
    }

    fn function(&mut self, f: &Func) {
        let arity = match f.name.as_str() {
            "if_not_exists" | "list_append" => 2,
            _ => {
                self.findings.add(RANK_UNKNOWN_FUNCTION, Reason::UnknownFunction(f.name.clone()));
                return;
            }
        };
        if f.args.len() != arity {
            self.findings.add(RANK_FUNCTION, Reason::OperandCount { function: f.name.clone(), count: f.args.len() });
            return;
        }
        if f.name == "if_not_exists" {
            if f.args[0].raw_path().is_none() {
                self.findings.add(RANK_FUNCTION, Reason::RequiresPath(f.name.clone()));
            }
        } else {
            self.literal_types(&f.name, &f.args, ValueType::L);
        }
    }

    fn literal_types(&mut self, function: &str, args: &[Operand], wanted: ValueType) {
        for arg in args {
            if let Some(t) = arg.value().map(AttributeValue::value_type) {
                if t != wanted {
                    self.findings.add(RANK_FUNCTION, Reason::OperandType { function: function.to_string(), operand: t.name().to_string() });
                    return;
                }
            }
        }
    }

    fn action_operand(&mut self, operator: &'static str, operand: &Operand) {
        let Some(value) = operand.value() else { return };
        let name = match value.value_type() {
            ValueType::S => "STRING",
            ValueType::N if operator == "ADD" => return,
            ValueType::N => "NUMBER",
            ValueType::B => "BINARY",
            ValueType::Null => "NULL",
            ValueType::Bool => "BOOLEAN",
            ValueType::L => "LIST",
            ValueType::M => "MAP",
            ValueType::SS | ValueType::NS | ValueType::BS => return,
        };
        self.findings.add(RANK_OPERAND, Reason::ActionOperandType { operator, operand: name });
    }
}

/// A parsed `UpdateExpression`, placeholders substituted.
#[derive(Clone, Debug)]
pub struct Update {
    actions: Vec<Action>,
}

impl Update {
    /// Parses and checks `text` as DynamoDB does. Marks the placeholders it uses.
    pub fn parse(text: &str, placeholders: &mut Placeholders) -> Result<Update, ExprError> {
        let kind = ExpressionKind::Update;
        check_text(kind, text)?;
        let mut cursor = Cursor::new(text);
        let sections = parse_sections(&mut cursor).map_err(|e| ExprError::Invalid { kind, reason: cursor.reason(e) })?;
        let mut checker = Checker { placeholders, findings: Findings::default(), operators: 0 };
        let mut seen: Vec<&str> = Vec::new();
        let mut actions = Vec::new();
        for (section, list) in sections {
            if seen.contains(&section) {
                checker.findings.add(RANK_SECTION, Reason::SectionTwice(section));
            }
            seen.push(section);
            actions.extend(list);
        }
        for action in actions.iter_mut() {
            checker.operators += 1;
            match action {
                Action::Set(path, value) => {
                    checker.path(path);
                    match value {
                        SetValue::Operand(operand) => checker.operand(operand),
                        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
                            checker.operators += 1;
                            checker.operand(a);
                            checker.operand(b);
                            let symbol = if matches!(value, SetValue::Plus(..)) { "+" } else { "-" };
                            if let SetValue::Plus(a, b) | SetValue::Minus(a, b) = value {
                                checker.literal_types(symbol, &[a.clone(), b.clone()], ValueType::N);
                            }
                        }
                    }
                }
                Action::Remove(path) => checker.path(path),
                Action::Add(path, operand) => {
                    checker.path(path);
                    checker.operand(operand);
                    checker.action_operand("ADD", operand);
                }
                Action::Delete(path, operand) => {
                    checker.path(path);
                    checker.operand(operand);
                    checker.action_operand("DELETE", operand);
                }
            }
        }
        let paths: Vec<&Path> = actions.iter().map(|a| a.path().path()).collect();
        check_overlaps(&paths, &mut checker.findings, RANK_OVERLAP, RANK_CONFLICT);
        if checker.operators > MAX_OPERATORS {
            checker.findings.add(RANK_LIMITS, Reason::TooManyOperators(checker.operators));
        }
        match checker.findings.first() {
            Some(reason) => Err(ExprError::Invalid { kind, reason }),
            None => Ok(Update { actions }),
        }
    }

    /// The paths the update writes or removes, in the order written.
    pub fn paths(&self) -> Vec<&Path> {
        self.actions.iter().map(|a| a.path().path()).collect()
    }

    /// DynamoDB's refusal of an update to a key attribute (`keys`: the table's key names).
    pub fn check_key_attributes(&self, keys: &[&str]) -> Result<(), ExprError> {
        match self.paths().into_iter().find(|p| keys.contains(&p.attribute())) {
            Some(path) => Err(ExprError::UpdatesKey(path.attribute().to_string())),
            None => Ok(()),
        }
    }

    /// Applies the update: `SET` values are computed from the item as it was, then actions run
    /// in order, removals last (list indexes name the elements as they were; later elements
    /// shift down). On error the item is unchanged.
    pub fn apply(&self, item: &mut Item) -> Result<(), UpdateError> {
        let mut values = Vec::new();
        for action in &self.actions {
            if let Action::Set(_, value) = action {
                values.push(set_value(value, item)?);
            }
        }
        let mut updated = item.clone();
        let mut values = values.into_iter();
        let mut removals = Vec::new();
        for action in &self.actions {
            match action {
                Action::Set(path, _) => {
                    let value = values.next().expect("one value per SET action");
                    match parent(&mut updated, path.path())? {
                        (Container::Map(m), PathElement::Attr(k)) => {
                            m.insert(k.clone(), value);
                        }
                        (Container::List(l), PathElement::Index(i)) => {
                            if *i < l.len() {
                                l[*i] = value;
                            } else {
                                l.push(value);
                            }
                        }
                        _ => return Err(UpdateError::InvalidPath),
                    }
                }
                Action::Remove(path) => {
                    // The parent must be there now; the element itself need not be.
                    parent(&mut updated, path.path())?;
                    removals.push(path.path());
                }
                Action::Add(path, operand) => {
                    let value = operand.value().expect("checked operands are values");
                    let (mut container, last) = parent(&mut updated, path.path())?;
                    let sum = match container.get(last) {
                        None => value.clone(),
                        Some(existing) => add(existing, value)?,
                    };
                    container.put(last, sum);
                }
                Action::Delete(path, operand) => {
                    let value = operand.value().expect("checked operands are values");
                    let (mut container, last) = parent(&mut updated, path.path())?;
                    if let Some(existing) = container.get(last) {
                        match delete(existing, value)? {
                            Some(rest) => container.put(last, rest),
                            None => container.remove(last),
                        }
                    }
                }
            }
        }
        // Last index first, so each removal names an element as it was.
        removals.sort();
        for path in removals.into_iter().rev() {
            let (mut container, last) = parent(&mut updated, path)?;
            container.remove(last);
        }
        *item = updated;
        Ok(())
    }
}

fn operand_value<'a>(operand: &'a Operand, item: &'a Item) -> Result<Cow<'a, AttributeValue>, UpdateError> {
    match operand {
        Operand::Paren(inner) => operand_value(inner, item),
        Operand::Path(path) => path.path().get(item).map(Cow::Borrowed).ok_or(UpdateError::MissingAttribute),
        Operand::Value { value, .. } => Ok(Cow::Borrowed(value.as_ref().expect("checked operands are values"))),
        Operand::Func(f) if f.name == "if_not_exists" => match f.args[0].raw_path().and_then(|p| p.path().get(item)) {
            Some(existing) => Ok(Cow::Borrowed(existing)),
            None => operand_value(&f.args[1], item),
        },
        Operand::Func(f) => {
            let AttributeValue::L(mut first) = operand_value(&f.args[0], item)?.into_owned() else {
                return Err(UpdateError::IncorrectDataType);
            };
            let AttributeValue::L(second) = operand_value(&f.args[1], item)?.into_owned() else {
                return Err(UpdateError::IncorrectDataType);
            };
            first.extend(second);
            Ok(Cow::Owned(AttributeValue::L(first)))
        }
    }
}

fn set_value(value: &SetValue, item: &Item) -> Result<AttributeValue, UpdateError> {
    let number = |operand: &Operand| -> Result<Number, UpdateError> {
        match operand_value(operand, item)?.as_ref() {
            AttributeValue::N(n) => Ok(n.clone()),
            _ => Err(UpdateError::IncorrectDataType),
        }
    };
    Ok(match value {
        SetValue::Operand(operand) => operand_value(operand, item)?.into_owned(),
        SetValue::Plus(a, b) => {
            let a = number(a)?;
            AttributeValue::N(a.checked_add(&number(b)?)?)
        }
        SetValue::Minus(a, b) => {
            let a = number(a)?;
            AttributeValue::N(a.checked_sub(&number(b)?)?)
        }
    })
}

fn union<T: Clone + PartialEq>(existing: &[T], added: &[T]) -> Vec<T> {
    let mut out = existing.to_vec();
    for member in added {
        if !out.contains(member) {
            out.push(member.clone());
        }
    }
    out
}

fn add(existing: &AttributeValue, value: &AttributeValue) -> Result<AttributeValue, UpdateError> {
    Ok(match (existing, value) {
        (AttributeValue::N(a), AttributeValue::N(b)) => AttributeValue::N(a.checked_add(b)?),
        (AttributeValue::SS(a), AttributeValue::SS(b)) => AttributeValue::SS(union(a, b)),
        (AttributeValue::NS(a), AttributeValue::NS(b)) => AttributeValue::NS(union(a, b)),
        (AttributeValue::BS(a), AttributeValue::BS(b)) => AttributeValue::BS(union(a, b)),
        _ => return Err(UpdateError::IncorrectDataType),
    })
}

/// The set without `value`'s members; `None` when nothing is left.
fn delete(existing: &AttributeValue, value: &AttributeValue) -> Result<Option<AttributeValue>, UpdateError> {
    fn minus<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|m| !b.contains(m)).cloned().collect()
    }
    let rest = match (existing, value) {
        (AttributeValue::SS(a), AttributeValue::SS(b)) => AttributeValue::SS(minus(a, b)),
        (AttributeValue::NS(a), AttributeValue::NS(b)) => AttributeValue::NS(minus(a, b)),
        (AttributeValue::BS(a), AttributeValue::BS(b)) => AttributeValue::BS(minus(a, b)),
        _ => return Err(UpdateError::IncorrectDataType),
    };
    let empty = match &rest {
        AttributeValue::SS(s) => s.is_empty(),
        AttributeValue::NS(s) => s.is_empty(),
        AttributeValue::BS(s) => s.is_empty(),
        _ => false,
    };
    Ok(if empty { None } else { Some(rest) })
}

/// Where a path's last element lives.
enum Container<'a> {
    Map(&'a mut std::collections::BTreeMap<String, AttributeValue>),
    List(&'a mut Vec<AttributeValue>),
}

impl Container<'_> {
    fn get(&self, element: &PathElement) -> Option<&AttributeValue> {
        match (self, element) {
            (Container::Map(m), PathElement::Attr(k)) => m.get(k),
            (Container::List(l), PathElement::Index(i)) => l.get(*i),
            _ => None,
        }
    }

    fn put(&mut self, element: &PathElement, value: AttributeValue) {
        match (self, element) {
            (Container::Map(m), PathElement::Attr(k)) => {
                m.insert(k.clone(), value);
            }
            (Container::List(l), PathElement::Index(i)) => {
                if *i < l.len() {
                    l[*i] = value;
                } else {
                    l.push(value);
                }
            }
            _ => {}
        }
    }

    fn remove(&mut self, element: &PathElement) {
        match (self, element) {
            (Container::Map(m), PathElement::Attr(k)) => {
                m.remove(k);
            }
            (Container::List(l), PathElement::Index(i)) if *i < l.len() => {
                l.remove(*i);
            }
            _ => {}
        }
    }
}

/// The container of `path`'s last element, which must be a map for a name and a list for an
/// index (dynalite `applyUpdateExpression`).
fn parent<'a, 'p>(item: &'a mut Item, path: &'p Path) -> Result<(Container<'a>, &'p PathElement), UpdateError> {
    let (last, steps) = path.0.split_last().expect("a path has an element");
    let mut container = Container::Map(item);
    for step in steps {
        let next = match (container, step) {
            (Container::Map(m), PathElement::Attr(k)) => m.get_mut(k),
            (Container::List(l), PathElement::Index(i)) => l.get_mut(*i),
            _ => None,
        };
        container = match next {
            Some(AttributeValue::M(m)) => Container::Map(m),
            Some(AttributeValue::L(l)) => Container::List(l),
            _ => return Err(UpdateError::InvalidPath),
        };
    }
    match (&container, last) {
        (Container::Map(_), PathElement::Attr(_)) | (Container::List(_), PathElement::Index(_)) => Ok((container, last)),
        _ => Err(UpdateError::InvalidPath),
    }
}
