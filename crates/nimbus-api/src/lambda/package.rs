//! Where a deployment package comes from: the request itself (`ZipFile`) or an object in a
//! bucket (`S3Bucket`, `S3Key`, `S3ObjectVersion`), read as AWS reads it, with the caller's
//! own `s3:GetObject` permission, and then handled exactly as an uploaded zip.

use std::io::Read;

use nimbus_identity::Caller;
use nimbus_model::validate::MAX_UNZIPPED_BYTES;
use nimbus_model::{ApiError, ErrorCode};
use nimbus_objects::ObjectError;

use crate::server::AppState;

/// AWS's answer to a `ZipFile` given with any of the S3 members.
pub const ZIP_AND_S3: &str = "Please do not provide other FunctionCode parameters when providing a ZipFile.";
/// AWS's answer when no code is given at all.
pub const NO_SOURCE: &str = "Please provide a source for function code.";
/// AWS's answer when only one of `S3Bucket` and `S3Key` is given.
pub const BUCKET_AND_KEY: &str = "S3 Bucket and Key are required for uploading with S3 parameters.";

/// The members of a FunctionCode (CreateFunction's `Code`, UpdateFunctionCode's body,
/// PublishLayerVersion's `Content`) that say where the zip is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CodeMembers {
    pub zip_file: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_key: Option<String>,
    pub s3_object_version: Option<String>,
}

/// A deployment package, before its bytes are read.
#[derive(Debug, PartialEq, Eq)]
pub enum Package {
    /// `ZipFile`, decoded.
    Zip(Vec<u8>),
    /// An object (a version of one) in a bucket of the caller's account.
    S3(S3Location),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

impl S3Location {
    /// The object's ARN, as IAM policies name it.
    pub fn arn(&self) -> String {
        format!("arn:aws:s3:::{}/{}", self.bucket, self.key)
    }

    /// The IAM action reading it takes: a version asked for by id is `s3:GetObjectVersion`.
    pub fn action(&self) -> &'static str {
        if self.version.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        }
    }
}

impl CodeMembers {
    /// Checks the members as AWS does: the model's constraints first (every failure in one
    /// ValidationException; `path` is where they sit: `code.`, `content.` or nothing), then
    /// which combination was given. `decode_zip` turns a `ZipFile` into its bytes.
    pub fn into_package(self, path: &str, decode_zip: impl FnOnce(&str) -> Result<Vec<u8>, ApiError>) -> Result<Package, ApiError> {
        let mut failures = Vec::new();
        if let Some(b) = &self.s3_bucket {
            constraints(&mut failures, b, &format!("{path}s3Bucket"), bucket_constraints(b));
        }
        if let Some(k) = &self.s3_key {
            constraints(&mut failures, k, &format!("{path}s3Key"), length_constraints(k, 1, 1024));
        }
        if let Some(v) = &self.s3_object_version {
            constraints(&mut failures, v, &format!("{path}s3ObjectVersion"), length_constraints(v, 1, 1024));
        }
        if !failures.is_empty() {
            let n = failures.len();
            let s = if n == 1 { "" } else { "s" };
            return Err(ApiError::new(ErrorCode::Validation, format!("{n} validation error{s} detected: {}", failures.join("; "))));
        }
        let any_s3 = self.s3_bucket.is_some() || self.s3_key.is_some() || self.s3_object_version.is_some();
        match (self.zip_file, self.s3_bucket, self.s3_key) {
            (Some(_), _, _) if any_s3 => Err(ApiError::invalid(ZIP_AND_S3)),
            (Some(zip), _, _) => Ok(Package::Zip(decode_zip(&zip)?)),
            (None, Some(bucket), Some(key)) => Ok(Package::S3(S3Location { bucket, key, version: self.s3_object_version })),
            _ if any_s3 => Err(ApiError::invalid(BUCKET_AND_KEY)),
            _ => Err(ApiError::invalid(NO_SOURCE)),
        }
    }
}

/// Adds `value`'s failed `checks` at `field` to `failures`, in AWS's words.
fn constraints(failures: &mut Vec<String>, value: &str, field: &str, checks: Vec<String>) {
    if !checks.is_empty() {
        failures.push(format!("Value '{value}' at '{field}' failed to satisfy constraint: {}", checks.join(", ")));
    }
}

fn length_constraints(value: &str, min: usize, max: usize) -> Vec<String> {
    let n = value.chars().count();
    let mut out = Vec::new();
    if n < min {
        out.push(format!("Member must have length greater than or equal to {min}"));
    }
    if n > max {
        out.push(format!("Member must have length less than or equal to {max}"));
    }
    out
}

/// `S3Bucket`'s constraints in Lambda's model: 3 to 63 characters of
/// `^[0-9A-Za-z\.\-_]*(?<!\.)$`.
fn bucket_constraints(bucket: &str) -> Vec<String> {
    let mut out = length_constraints(bucket, 3, 63);
    let allowed = bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !allowed || bucket.ends_with('.') {
        out.push(r"Member must satisfy regular expression pattern: ^[0-9A-Za-z\.\-_]*(?<!\.)$".to_string());
    }
    out
}

/// AWS's answer when reading the object failed with `e`, S3's code and message quoted.
pub fn get_object_error(e: &ObjectError) -> ApiError {
    match e {
        ObjectError::Internal(_) | ObjectError::StorageFull => ApiError::service(format!("reading the deployment package: {e}")),
        e => ApiError::invalid(format!("Error occurred while GetObject. S3 Error Code: {}. S3 Error Message: {e}", e.code())),
    }
}

/// AWS's answer when the caller may not read the object: S3's denial `why` (as IAM words
/// it) quoted in Lambda's AccessDeniedException.
pub fn access_denied(at: &S3Location, why: &str) -> ApiError {
    // S3 quotes the resource in its denials.
    let arn = at.arn();
    let why = why.replacen(&format!(" on resource: {arn}"), &format!(" on resource: \"{arn}\""), 1);
    ApiError::new(
        ErrorCode::AccessDenied,
        format!(
            "Your access has been denied by S3, please make sure your request credentials have permission to GetObject for {}/{}. S3 Error Code: AccessDenied. S3 Error Message: {why}",
            at.bucket, at.key
        ),
    )
}

/// The message of a package too large to be unzipped within Lambda's limit.
fn too_large() -> ApiError {
    ApiError::invalid(format!("Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes"))
}

impl Package {
    /// The zip's bytes: a `ZipFile` as given, or an object read from its bucket (in the
    /// caller's account, or another account of this server that owns it: bucket names are
    /// one namespace, as on AWS) once the caller may read it. The whole zip is held in
    /// memory, as a `ZipFile` is.
    pub async fn load(self, state: &AppState, caller: Option<&Caller>) -> Result<Vec<u8>, ApiError> {
        let at = match self {
            Package::Zip(zip) => return Ok(zip),
            Package::S3(at) => at,
        };
        // `state` is the function's account; the caller's may be another (a cross-account call).
        let held = caller.filter(|c| c.principal.account != state.account()).and_then(|c| state.accounts.get(&c.principal.account));
        let home: &AppState = held.as_deref().unwrap_or(state);
        let other = bucket_owner(home, &at.bucket).await;
        let owner: &AppState = other.as_deref().unwrap_or(home);
        if let (Some(_), Some(caller)) = (&home.keys, caller) {
            crate::authz::caller_may(home, owner, caller, at.action(), &at.arn()).await.map_err(|why| access_denied(&at, &why))?;
        }
        let object = owner.objects.head(&at.bucket, &at.key, at.version.as_deref()).await.map_err(|e| get_object_error(&e))?;
        if object.delete_marker {
            return Err(get_object_error(&ObjectError::MethodNotAllowed { version_id: object.version_id }));
        }
        // Zipped, a package is no smaller than its unzipped limit allows (stored entries plus
        // their headers): one over it is refused before it is read.
        if object.size > MAX_UNZIPPED_BYTES {
            return Err(too_large());
        }
        let objects = owner.objects.clone();
        let size = object.size;
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let file = objects.open_body(&object)?;
            let mut zip = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.take(size).read_to_end(&mut zip)?;
            Ok(zip)
        })
        .await
        .map_err(|e| ApiError::service(format!("reading the deployment package: {e}")))?;
        let zip = read.map_err(|e| ApiError::service(format!("reading the deployment package s3://{}/{}: {e}", at.bucket, at.key)))?;
        if zip.len() as u64 != size {
            return Err(ApiError::service(format!(
                "reading the deployment package s3://{}/{}: {} of {size} bytes",
                at.bucket,
                at.key,
                zip.len()
            )));
        }
        Ok(zip)
    }
}

/// The account of this server other than `home` that owns `bucket`, if `home` does not.
async fn bucket_owner(home: &AppState, bucket: &str) -> Option<std::sync::Arc<AppState>> {
    if !home.accounts.several() || home.objects.bucket(bucket).await.is_ok() {
        return None;
    }
    for other in home.accounts.all() {
        if other.account() != home.account() && other.objects.bucket(bucket).await.is_ok() {
            return Some(other);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(zip: Option<&str>, bucket: Option<&str>, key: Option<&str>, version: Option<&str>) -> CodeMembers {
        CodeMembers {
            zip_file: zip.map(String::from),
            s3_bucket: bucket.map(String::from),
            s3_key: key.map(String::from),
            s3_object_version: version.map(String::from),
        }
    }

    /// The package, or the error's exception name and message.
    type Outcome = Result<Package, (String, String)>;

    fn check(m: CodeMembers, path: &str) -> Outcome {
        m.into_package(path, |z| Ok(z.as_bytes().to_vec())).map_err(|e| (e.code.name().to_string(), e.message))
    }

    fn s3(bucket: &str, key: &str, version: Option<&str>) -> Package {
        Package::S3(S3Location { bucket: bucket.into(), key: key.into(), version: version.map(String::from) })
    }

    fn invalid(m: &str) -> Outcome {
        Err(("InvalidParameterValueException".into(), m.into()))
    }

    fn validation(m: &str) -> Outcome {
        Err(("ValidationException".into(), m.into()))
    }

    #[test]
    fn members_become_a_package_or_awss_error() {
        let pattern = r"Member must satisfy regular expression pattern: ^[0-9A-Za-z\.\-_]*(?<!\.)$";
        let long_key = "k".repeat(1025);
        let cases: Vec<(CodeMembers, &str, Outcome)> = vec![
            (members(Some("zip"), None, None, None), "code.", Ok(Package::Zip(b"zip".to_vec()))),
            (members(None, Some("bkt"), Some("a/b.zip"), None), "code.", Ok(s3("bkt", "a/b.zip", None))),
            (members(None, Some("my.bucket_1-x"), Some("k"), Some("v1")), "", Ok(s3("my.bucket_1-x", "k", Some("v1")))),
            (members(Some("zip"), Some("bkt"), None, None), "code.", invalid(ZIP_AND_S3)),
            (members(Some("zip"), None, Some("k"), None), "code.", invalid(ZIP_AND_S3)),
            (members(Some("zip"), None, None, Some("v")), "", invalid(ZIP_AND_S3)),
            (members(Some("zip"), Some("bkt"), Some("k"), None), "content.", invalid(ZIP_AND_S3)),
            (members(None, Some("bkt"), None, None), "code.", invalid(BUCKET_AND_KEY)),
            (members(None, None, Some("k"), None), "code.", invalid(BUCKET_AND_KEY)),
            (members(None, None, None, Some("v")), "code.", invalid(BUCKET_AND_KEY)),
            (members(None, None, None, None), "code.", invalid(NO_SOURCE)),
            (
                members(None, Some("ab"), Some("k"), None),
                "code.",
                validation("1 validation error detected: Value 'ab' at 'code.s3Bucket' failed to satisfy constraint: Member must have length greater than or equal to 3"),
            ),
            (
                members(None, Some("s3://bkt"), Some("k"), None),
                "code.",
                validation(&format!("1 validation error detected: Value 's3://bkt' at 'code.s3Bucket' failed to satisfy constraint: {pattern}")),
            ),
            (
                members(None, Some("bkt."), Some("k"), None),
                "content.",
                validation(&format!("1 validation error detected: Value 'bkt.' at 'content.s3Bucket' failed to satisfy constraint: {pattern}")),
            ),
            (
                members(None, Some("a/"), Some(""), None),
                "",
                validation(&format!(
                    "2 validation errors detected: Value 'a/' at 's3Bucket' failed to satisfy constraint: Member must have length greater than or equal to 3, {pattern}; Value '' at 's3Key' failed to satisfy constraint: Member must have length greater than or equal to 1"
                )),
            ),
            (
                members(None, Some("bkt"), Some(&long_key), None),
                "code.",
                validation(&format!("1 validation error detected: Value '{long_key}' at 'code.s3Key' failed to satisfy constraint: Member must have length less than or equal to 1024")),
            ),
            // The model's constraints come before the combination is looked at.
            (
                members(Some("zip"), Some("b"), None, None),
                "code.",
                validation("1 validation error detected: Value 'b' at 'code.s3Bucket' failed to satisfy constraint: Member must have length greater than or equal to 3"),
            ),
        ];
        for (m, path, want) in cases {
            let shown = format!("{m:?} at {path:?}");
            assert_eq!(check(m, path), want, "{shown}");
        }
    }

    #[test]
    fn reading_is_authorized_as_s3_authorizes_get_object() {
        let latest = S3Location { bucket: "b".into(), key: "dir/f.zip".into(), version: None };
        assert_eq!((latest.action(), latest.arn().as_str()), ("s3:GetObject", "arn:aws:s3:::b/dir/f.zip"));
        let version = S3Location { version: Some("3".into()), ..latest.clone() };
        assert_eq!(version.action(), "s3:GetObjectVersion");
    }

    #[test]
    fn s3s_errors_are_quoted_as_aws_quotes_them() {
        let cases = [
            (
                ObjectError::NoSuchBucket,
                "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist",
            ),
            (
                ObjectError::NoSuchKey { delete_marker: None },
                "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.",
            ),
            (
                ObjectError::NoSuchVersion,
                "Error occurred while GetObject. S3 Error Code: NoSuchVersion. S3 Error Message: The specified version does not exist.",
            ),
        ];
        for (e, want) in cases {
            let got = get_object_error(&e);
            assert_eq!((got.code, got.message.as_str()), (ErrorCode::InvalidParameterValue, want));
        }
        assert_eq!(get_object_error(&ObjectError::Internal("disk".into())).code, ErrorCode::Service);

        let at = S3Location { bucket: "b".into(), key: "k.zip".into(), version: None };
        let denied = access_denied(
            &at,
            "User: arn:aws:iam::000000000000:user/u is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::b/k.zip because no identity-based policy allows the s3:GetObject action",
        );
        assert_eq!(denied.code, ErrorCode::AccessDenied);
        assert_eq!(
            denied.message,
            "Your access has been denied by S3, please make sure your request credentials have permission to GetObject for b/k.zip. S3 Error Code: AccessDenied. S3 Error Message: User: arn:aws:iam::000000000000:user/u is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::b/k.zip\" because no identity-based policy allows the s3:GetObject action"
        );
    }
}
