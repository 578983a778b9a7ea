//! Function names as callers write them (name, partial ARN, full ARN, with or without a
//! qualifier) turned into one typed reference.

use crate::error::ApiError;
use crate::function::LATEST;
use crate::Partition;

/// Which copy of a function an invocation or lookup means.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    Latest,
    /// A published version number or an alias name; resolved by the control plane.
    Named(String),
}

impl Qualifier {
    pub fn parse(s: &str) -> Result<Qualifier, ApiError> {
        if s == LATEST {
            return Ok(Qualifier::Latest);
        }
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ApiError::validation(s, "qualifier", "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"));
        }
        Ok(Qualifier::Named(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Qualifier::Latest => LATEST,
            Qualifier::Named(s) => s,
        }
    }
}

/// A function named by a caller: its plain name and the qualifier the name carried, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<Qualifier>,
}

/// True for AWS's function name pattern `[a-zA-Z0-9-_]+`, 1–64 characters.
pub fn is_valid_function_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const NAME_PATTERN: &str = "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";

impl FunctionRef {
    /// Parses `name`, `name:qualifier`, `123456789012:function:name[:q]` or
    /// `arn:aws:lambda:region:account:function:name[:q]`. A full ARN for another region or
    /// account names a function that does not exist here.
    pub fn parse(input: &str, partition: &Partition) -> Result<FunctionRef, ApiError> {
        let invalid = || ApiError::validation(input, "functionName", NAME_PATTERN);
        if input.is_empty() || input.len() > 170 {
            return Err(invalid());
        }
        let parts: Vec<&str> = input.split(':').collect();
        let (name, qualifier) = match parts.as_slice() {
            [name] => (*name, None),
            [name, q] => (*name, Some(*q)),
            [account, "function", name] if is_account(account) => {
                check_account(account, input, partition)?;
                (*name, None)
            }
            [account, "function", name, q] if is_account(account) => {
                check_account(account, input, partition)?;
                (*name, Some(*q))
            }
            ["arn", p, "lambda", region, account, "function", name, rest @ ..]
                if p.starts_with("aws") && is_account(account) && rest.len() <= 1 =>
            {
                if *region != partition.region || *account != partition.account_id {
                    return Err(ApiError::not_found(format!("Function not found: {input}")));
                }
                (*name, rest.first().copied())
            }
            _ => return Err(invalid()),
        };
        if !is_valid_function_name(name) {
            return Err(invalid());
        }
        let qualifier = match qualifier {
            Some(q) => Some(Qualifier::parse(q).map_err(|_| invalid())?),
            None => None,
        };
        Ok(FunctionRef { name: name.to_string(), qualifier })
    }

    /// Combines the qualifier in the name with a separate `Qualifier` parameter; AWS rejects
    /// the two when they disagree.
    pub fn with_qualifier(mut self, param: Option<&str>) -> Result<FunctionRef, ApiError> {
        let Some(param) = param.filter(|p| !p.is_empty()) else { return Ok(self) };
        let q = Qualifier::parse(param)?;
        match &self.qualifier {
            Some(existing) if *existing != q => {
                Err(ApiError::invalid("The derived qualifier from the function name does not match the specified qualifier."))
            }
            _ => {
                self.qualifier = Some(q);
                Ok(self)
            }
        }
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_account(account: &str, input: &str, partition: &Partition) -> Result<(), ApiError> {
    if account != partition.account_id {
        return Err(ApiError::not_found(format!("Function not found: {input}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn p() -> Partition {
        Partition { region: "us-east-1".into(), account_id: "000000000000".into() }
    }

    fn check(input: &str, name: &str, q: Option<&str>) {
        let r = FunctionRef::parse(input, &p()).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.name, name, "{input}");
        assert_eq!(r.qualifier.as_ref().map(|q| q.as_str()), q, "{input}");
    }

    #[test]
    fn accepted_forms() {
        check("f", "f", None);
        check("my-func_1", "my-func_1", None);
        check("f:$LATEST", "f", Some("$LATEST"));
        check("f:prod", "f", Some("prod"));
        check("000000000000:function:f", "f", None);
        check("000000000000:function:f:3", "f", Some("3"));
        check("arn:aws:lambda:us-east-1:000000000000:function:f", "f", None);
        check("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST", "f", Some("$LATEST"));
    }

    #[test]
    fn rejected_forms() {
        for bad in ["", "a b", "f:g:h:i", &"x".repeat(65), "arn:aws:lambda:us-east-1:000000000000:layer:f"] {
            let e = FunctionRef::parse(bad, &p()).unwrap_err();
            assert_eq!(e.code, ErrorCode::Validation, "{bad}");
        }
        let e = FunctionRef::parse("arn:aws:lambda:eu-west-1:000000000000:function:f", &p()).unwrap_err();
        assert_eq!(e.code, ErrorCode::ResourceNotFound);
    }

    #[test]
    fn qualifier_param_must_agree() {
        let r = FunctionRef::parse("f:1", &p()).unwrap();
        r.clone().with_qualifier(Some("1")).unwrap();
        assert_eq!(r.with_qualifier(Some("2")).unwrap_err().code, ErrorCode::InvalidParameterValue);
        let r = FunctionRef::parse("f", &p()).unwrap().with_qualifier(Some("$LATEST")).unwrap();
        assert_eq!(r.qualifier, Some(Qualifier::Latest));
    }
}
