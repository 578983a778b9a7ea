//! The part of CloudWatch's filter pattern syntax Nimbus understands: terms that must all
//! appear (`ERROR timeout`), quoted phrases (`"Task timed out"`), and terms that must not
//! (`-DEBUG`). An empty pattern matches everything.

#[derive(Debug, Clone, Default)]
pub struct FilterPattern {
    must: Vec<String>,
    must_not: Vec<String>,
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> FilterPattern {
        let mut out = FilterPattern::default();
        let mut chars = pattern.trim().chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let negate = c == '-';
            if negate {
                chars.next();
            }
            let term: String = if chars.peek() == Some(&'"') {
                chars.next();
                let t = chars.by_ref().take_while(|&c| c != '"').collect();
                t
            } else {
                let mut t = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    t.push(c);
                    chars.next();
                }
                t
            };
            if term.is_empty() {
                continue;
            }
            if negate {
                out.must_not.push(term);
            } else {
                out.must.push(term);
            }
        }
        out
    }

    pub fn matches(&self, message: &str) -> bool {
        self.must.iter().all(|t| message.contains(t.as_str())) && !self.must_not.iter().any(|t| message.contains(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, message: &str, expected: bool) {
        assert_eq!(FilterPattern::parse(pattern).matches(message), expected, "{pattern:?} on {message:?}");
    }

    #[test]
    fn patterns() {
        check("", "anything", true);
        check("ERROR", "an ERROR here", true);
        check("ERROR timeout", "ERROR but no", false);
        check("\"Task timed out\"", "x Task timed out after 3.00 seconds", true);
        check("REPORT -Init", "REPORT RequestId: 1\tInit Duration: 2 ms", false);
        check("REPORT -Init", "REPORT RequestId: 1", true);
    }
}
