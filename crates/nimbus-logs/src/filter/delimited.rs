//! Space-delimited filter patterns: `[ip, user, ..., status = 4*, bytes > 1000]`. A message's
//! fields are split on spaces, a field in double quotes or square brackets kept whole (without
//! them); each named field takes one, `...` any number. Conditions compare a field with a
//! string (`*` wildcards) or a number, joined by `&&` (binding tighter) and `||`; a condition
//! after `&&`/`||` may name another field.

use super::Lexer;
use super::{Op, Operand, PatternError};

#[derive(Debug, Clone)]
enum Field {
    Ellipsis,
    Named { name: String, cond: Vec<Vec<Compare>> },
}

/// `field op value`.
#[derive(Debug, Clone)]
struct Compare {
    field: String,
    op: Op,
    value: Operand,
}

/// A parsed space-delimited pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    fields: Vec<Field>,
}

impl Pattern {
    /// Parses what is between a pattern's brackets.
    pub(crate) fn parse(body: &str) -> Result<Pattern, PatternError> {
        if body.trim().is_empty() {
            return Ok(Pattern { fields: vec![Field::Ellipsis] });
        }
        let fields = split_commas(body)?.into_iter().map(parse_field).collect::<Result<Vec<_>, _>>()?;
        Ok(Pattern { fields })
    }

    /// The named fields' names.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().filter_map(|f| match f {
            Field::Named { name, .. } => Some(name.as_str()),
            Field::Ellipsis => None,
        })
    }

    /// Literals every match contains: the `=` string values of conditions without `||`.
    pub(crate) fn required(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.fields {
            if let Field::Named { cond, .. } = f {
                if let [all] = cond.as_slice() {
                    out.extend(all.iter().flat_map(|c| c.value.literals(c.op)));
                }
            }
        }
        out
    }

    /// The named fields' values if `message` matches.
    pub(crate) fn match_fields(&self, message: &str) -> Option<Vec<(&str, String)>> {
        let tokens = split_message(message);
        let mut taken: Vec<(&str, &str)> = Vec::with_capacity(self.fields.len());
        if !self.assign(0, &tokens, &mut taken) {
            return None;
        }
        Some(taken.into_iter().map(|(n, v)| (n, v.to_string())).collect())
    }

    /// Gives the fields from `fi` on the tokens left, backtracking over ellipses; true once
    /// every field has its tokens and every condition holds.
    fn assign<'p, 'm>(&'p self, fi: usize, tokens: &[&'m str], taken: &mut Vec<(&'p str, &'m str)>) -> bool {
        match self.fields.get(fi) {
            None => tokens.is_empty() && self.holds(taken),
            Some(Field::Ellipsis) => (0..=tokens.len()).any(|k| self.assign(fi + 1, &tokens[k..], taken)),
            Some(Field::Named { name, .. }) => {
                let Some((first, rest)) = tokens.split_first() else { return false };
                taken.push((name, first));
                if self.assign(fi + 1, rest, taken) {
                    return true;
                }
                taken.pop();
                false
            }
        }
    }

    fn holds(&self, taken: &[(&str, &str)]) -> bool {
        let value = |name: &str| taken.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        self.fields.iter().all(|f| match f {
            Field::Ellipsis => true,
            Field::Named { cond, .. } => {
                cond.is_empty()
                    || cond.iter().any(|all| all.iter().all(|c| value(&c.field).is_some_and(|v| c.value.compare(c.op, v, v.parse().ok()))))
            }
        })
    }
}

/// Splits a pattern body on the commas outside quotes.
fn split_commas(body: &str) -> Result<Vec<&str>, PatternError> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                chars.next();
            }
            ',' if !quoted => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(PatternError);
    }
    out.push(&body[start..]);
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn parse_field(text: &str) -> Result<Field, PatternError> {
    let text = text.trim();
    if text == "..." {
        return Ok(Field::Ellipsis);
    }
    let mut lexer = Lexer::new(text);
    let name = lexer.name()?;
    let mut cond: Vec<Vec<Compare>> = Vec::new();
    lexer.skip_ws();
    if lexer.pos < text.len() {
        let mut all = vec![lexer.compare(&name)?];
        loop {
            if lexer.eat("&&") {
                all.push(lexer.named_compare(&name)?);
            } else if lexer.eat("||") {
                cond.push(std::mem::take(&mut all));
                all.push(lexer.named_compare(&name)?);
            } else {
                break;
            }
        }
        cond.push(all);
        lexer.skip_ws();
        if lexer.pos != text.len() {
            return Err(PatternError);
        }
    }
    Ok(Field::Named { name, cond })
}

impl<'a> Lexer<'a> {
    fn name(&mut self) -> Result<String, PatternError> {
        self.skip_ws();
        let r = self.rest();
        let len = r.find(|c: char| !is_name_char(c)).unwrap_or(r.len());
        if len == 0 {
            return Err(PatternError);
        }
        self.pos += len;
        Ok(r[..len].to_string())
    }

    /// A comparison after `&&`/`||`: of the field it names, or of `own`.
    fn named_compare(&mut self, own: &str) -> Result<Compare, PatternError> {
        self.skip_ws();
        if self.rest().starts_with(is_name_char) {
            let name = self.name()?;
            return self.compare(&name);
        }
        self.compare(own)
    }

    fn compare(&mut self, field: &str) -> Result<Compare, PatternError> {
        self.skip_ws();
        let (op, len) = Op::lex(self.rest()).ok_or(PatternError)?;
        self.pos += len;
        self.skip_ws();
        let r = self.rest();
        let value = if let Some(after) = r.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = after.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    '\\' => out.push(chars.next().ok_or(PatternError)?.1),
                    c => out.push(c),
                }
            }
            self.pos += 1 + end.ok_or(PatternError)? + 1;
            Operand::Text(out)
        } else {
            let len = r.find(|c: char| c.is_whitespace() || c == '&' || c == '|').unwrap_or(r.len());
            if len == 0 || Op::lex(&r[..len]).is_some() {
                return Err(PatternError);
            }
            self.pos += len;
            Operand::bare(&r[..len])
        };
        Ok(Compare { field: field.to_string(), op, value })
    }
}

/// A message's fields: split on spaces, `"…"` and `[…]` kept whole and given without them.
fn split_message(message: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = message.trim_start();
    while !rest.is_empty() {
        let close = match rest.as_bytes()[0] {
            b'"' => Some('"'),
            b'[' => Some(']'),
            _ => None,
        };
        let (field, after) = match close.and_then(|c| rest[1..].find(c).map(|i| (c, i))) {
            Some((_, i)) => (&rest[1..1 + i], &rest[1 + i + 1..]),
            None => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        out.push(field);
        rest = after.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_fields() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("a b  c", vec!["a", "b", "c"]),
            (
                r#"1.2.3.4 - - [10/Oct/2000:13:25:15 -0700] "GET / HTTP/1.0" 200"#,
                vec!["1.2.3.4", "-", "-", "10/Oct/2000:13:25:15 -0700", "GET / HTTP/1.0", "200"],
            ),
            ("  lead trail  ", vec!["lead", "trail"]),
            (r#""unclosed quote"#, vec![r#""unclosed"#, "quote"]),
            ("", vec![]),
        ];
        for (message, want) in cases {
            assert_eq!(split_message(message), want, "{message:?}");
        }
    }
}
