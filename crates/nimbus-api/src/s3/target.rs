//! S3's half of the authorization table: each call's IAM action and bucket or object ARN,
//! as the Service Authorization Reference lists them for Amazon S3 (HEAD and multipart
//! calls are authorized as the actions they belong to: HeadObject as `s3:GetObject`,
//! UploadPart as `s3:PutObject`; a call on a version as its `…Version` action).

use super::S3Request;
use crate::authz::{Scope, Target};

impl S3Request {
    pub(crate) fn target(&self, _scope: &Scope<'_>) -> Option<Target> {
        let bucket = format!("arn:aws:s3:::{}", self.bucket());
        let object = format!("arn:aws:s3:::{}/{}", self.bucket(), self.key());
        let versioned = self.has("versionId");
        let on_bucket = |action| Target::on(action, bucket.clone());
        let on_object = |action| Target::on(action, object.clone());
        Some(match self.operation {
            "ListBuckets" => Target::any("s3:ListAllMyBuckets"),
            "CreateBucket" => on_bucket("s3:CreateBucket"),
            "DeleteBucket" => on_bucket("s3:DeleteBucket"),
            "HeadBucket" | "ListObjects" | "ListObjectsV2" => on_bucket("s3:ListBucket"),
            "ListObjectVersions" => on_bucket("s3:ListBucketVersions"),
            "ListMultipartUploads" => on_bucket("s3:ListBucketMultipartUploads"),
            "GetBucketLocation" => on_bucket("s3:GetBucketLocation"),
            "GetBucketVersioning" => on_bucket("s3:GetBucketVersioning"),
            "PutBucketVersioning" => on_bucket("s3:PutBucketVersioning"),
            "GetBucketTagging" => on_bucket("s3:GetBucketTagging"),
            "PutBucketTagging" | "DeleteBucketTagging" => on_bucket("s3:PutBucketTagging"),
            "GetBucketNotificationConfiguration" => on_bucket("s3:GetBucketNotification"),
            "GetBucketPolicy" => on_bucket("s3:GetBucketPolicy"),
            "PutBucketPolicy" => on_bucket("s3:PutBucketPolicy"),
            "DeleteBucketPolicy" => on_bucket("s3:DeleteBucketPolicy"),
            "PutBucketNotificationConfiguration" => on_bucket("s3:PutBucketNotification"),
            "GetObject" | "HeadObject" if versioned => on_object("s3:GetObjectVersion"),
            "GetObject" | "HeadObject" => on_object("s3:GetObject"),
            "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => on_object("s3:PutObject"),
            // A POST form is authorized once its policy's signer is known (`s3::post`).
            "PostObject" => return None,
            "CopyObject" | "UploadPartCopy" => on_object("s3:PutObject"),
            "DeleteObject" if versioned => on_object("s3:DeleteObjectVersion"),
            "DeleteObject" => on_object("s3:DeleteObject"),
            // Each key is authorized as a DeleteObject of its own by S3; the batch needs it on the bucket's objects.
            "DeleteObjects" => Target::on("s3:DeleteObject", format!("arn:aws:s3:::{}/*", self.bucket())),
            "AbortMultipartUpload" => on_object("s3:AbortMultipartUpload"),
            "ListParts" => on_object("s3:ListMultipartUploadParts"),
            "GetObjectTagging" if versioned => on_object("s3:GetObjectVersionTagging"),
            "GetObjectTagging" => on_object("s3:GetObjectTagging"),
            "PutObjectTagging" if versioned => on_object("s3:PutObjectVersionTagging"),
            "PutObjectTagging" => on_object("s3:PutObjectTagging"),
            "DeleteObjectTagging" if versioned => on_object("s3:DeleteObjectVersionTagging"),
            "DeleteObjectTagging" => on_object("s3:DeleteObjectTagging"),
            _ => return None,
        })
    }
}
