"""Lambda code from buckets: CreateFunction, UpdateFunctionCode and PublishLayerVersion
take `S3Bucket`/`S3Key`/`S3ObjectVersion` as AWS does, read the object as the caller (its
`s3:GetObject`, or `s3:GetObjectVersion` for a version) and then treat it as an uploaded
zip; a package from S3 may be over the 50 MB of a direct upload; AWS's errors for missing
buckets, keys and versions, for mixed or partial code members and for a caller S3 refuses;
and `nimbus deploy --s3`."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile

import pytest
from botocore.exceptions import ClientError

from helpers import ACCOUNT, REGION, ROLE, client_error, invoke, make_zip, run, server_env, sha256_b64, unique

MB = 1000 * 1000


def handler_zip(version) -> bytes:
    return make_zip({"index.py": f"def handler(event, context):\n    return {{'v': {version!r}, 'event': event}}\n"})


def get_object_error(code: str, message: str) -> tuple[str, int, str]:
    return ("InvalidParameterValueException", 400,
            f"Error occurred while GetObject. S3 Error Code: {code}. S3 Error Message: {message}")


NO_SUCH_BUCKET = get_object_error("NoSuchBucket", "The specified bucket does not exist")
NO_SUCH_KEY = get_object_error("NoSuchKey", "The specified key does not exist.")
NO_SUCH_VERSION = get_object_error("NoSuchVersion", "The specified version does not exist.")
ZIP_AND_S3 = ("InvalidParameterValueException", 400,
              "Please do not provide other FunctionCode parameters when providing a ZipFile.")
BUCKET_AND_KEY = ("InvalidParameterValueException", 400, "S3 Bucket and Key are required for uploading with S3 parameters.")


@pytest.fixture(scope="module")
def s3(server):
    return server.client("s3")


@pytest.fixture(scope="module")
def lam(server):
    return server.lambda_client()


@pytest.fixture(scope="module")
def lam_raw(server):
    return server.lambda_client(validate=False)


def _empty_and_remove(s3, name):
    try:
        versions = s3.list_object_versions(Bucket=name)
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


@pytest.fixture
def bucket(s3):
    """A fresh bucket, emptied and removed after the test."""
    name = unique("code").lower().replace("_", "-")[:60]
    s3.create_bucket(Bucket=name)
    yield name
    _empty_and_remove(s3, name)


@pytest.fixture
def functions(lam):
    """Names of functions to delete after the test."""
    names: list[str] = []
    yield names
    for n in names:
        try:
            lam.delete_function(FunctionName=n)
        except ClientError:
            pass


def wait_active(lam, name):
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def wait_updated(lam, name):
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def create_from_s3(lam, name, code, **kwargs):
    cfg = lam.create_function(FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=ROLE, Code=code, **kwargs)
    wait_active(lam, name)
    return cfg


def test_a_function_is_created_from_a_zip_in_a_bucket_and_runs(s3, lam, bucket, functions, server):
    zip_bytes = handler_zip(1)
    s3.put_object(Bucket=bucket, Key="builds/app.zip", Body=zip_bytes)
    name = unique("s3code")
    functions.append(name)
    cfg = create_from_s3(lam, name, {"S3Bucket": bucket, "S3Key": "builds/app.zip"})
    assert cfg["CodeSha256"] == sha256_b64(zip_bytes)
    assert cfg["CodeSize"] == len(zip_bytes)
    assert invoke(lam, name, {"a": 1}).ok() == {"v": 1, "event": {"a": 1}}
    code = lam.get_function(FunctionName=name)["Code"]
    assert code["RepositoryType"] == "S3"
    assert code["Location"].startswith(f"{server.endpoint}/_nimbus/code/{ACCOUNT}/")
    # The object is read once: changing it later changes nothing.
    s3.put_object(Bucket=bucket, Key="builds/app.zip", Body=handler_zip(2))
    assert invoke(lam, name).ok()["v"] == 1


def test_code_is_updated_from_another_key_and_from_an_older_version(s3, lam, bucket, functions):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="app.zip", Body=handler_zip("first"))["VersionId"]
    s3.put_object(Bucket=bucket, Key="app.zip", Body=handler_zip("second"))
    s3.put_object(Bucket=bucket, Key="other.zip", Body=handler_zip("other"))
    name = unique("s3update")
    functions.append(name)
    create_from_s3(lam, name, {"S3Bucket": bucket, "S3Key": "app.zip"})
    assert invoke(lam, name).ok()["v"] == "second"

    cfg = lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="other.zip")
    assert cfg["CodeSha256"] == sha256_b64(handler_zip("other"))
    wait_updated(lam, name)
    assert invoke(lam, name).ok()["v"] == "other"

    cfg = lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="app.zip", S3ObjectVersion=first, Publish=True)
    assert cfg["Version"] == "1"
    wait_updated(lam, name)
    assert invoke(lam, name).ok()["v"] == "first"
    assert invoke(lam, f"{name}:1").ok()["v"] == "first"

    # A function can also be created from a version.
    again = unique("s3version")
    functions.append(again)
    create_from_s3(lam, again, {"S3Bucket": bucket, "S3Key": "app.zip", "S3ObjectVersion": first})
    assert invoke(lam, again).ok()["v"] == "first"


def test_a_layer_is_published_from_s3_and_a_function_uses_it(s3, lam, bucket, functions):
    layer_zip = make_zip({"python/helper.py": "def greet(n):\n    return f'hello {n} from an s3 layer'\n"})
    s3.put_object(Bucket=bucket, Key="layers/helper.zip", Body=layer_zip)
    layer = unique("s3layer")
    published = lam.publish_layer_version(LayerName=layer, Content={"S3Bucket": bucket, "S3Key": "layers/helper.zip"},
                                          CompatibleRuntimes=["python3.11"])
    try:
        assert published["Version"] == 1
        assert published["Content"]["CodeSha256"] == sha256_b64(layer_zip)
        assert published["Content"]["CodeSize"] == len(layer_zip)
        fn_zip = make_zip({"index.py": "from helper import greet\n\ndef handler(event, context):\n    return greet(event['n'])\n"})
        s3.put_object(Bucket=bucket, Key="fn.zip", Body=fn_zip)
        name = unique("s3layered")
        functions.append(name)
        create_from_s3(lam, name, {"S3Bucket": bucket, "S3Key": "fn.zip"}, Layers=[published["LayerVersionArn"]])
        assert invoke(lam, name, {"n": "ana"}).ok() == "hello ana from an s3 layer"
    finally:
        lam.delete_layer_version(LayerName=layer, VersionNumber=published["Version"])


def expect(fn, want):
    with pytest.raises(ClientError) as e:
        fn()
    assert client_error(e) == want


def test_awss_errors_for_missing_objects_and_wrong_members(s3, lam, lam_raw, bucket, functions):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="app.zip", Body=handler_zip(1))
    missing_bucket = unique("nobucket").lower().replace("_", "-")[:60]
    name = unique("s3errors")

    def create(**code):
        return lambda: lam_raw.create_function(FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=ROLE, Code=code)

    expect(create(S3Bucket=missing_bucket, S3Key="app.zip"), NO_SUCH_BUCKET)
    expect(create(S3Bucket=bucket, S3Key="non/existent.zip"), NO_SUCH_KEY)
    expect(create(S3Bucket=bucket, S3Key="app.zip", S3ObjectVersion="not-a-version"), NO_SUCH_VERSION)
    expect(create(ZipFile=handler_zip(1), S3Bucket=bucket, S3Key="app.zip"), ZIP_AND_S3)
    expect(create(ZipFile=handler_zip(1), S3Bucket=bucket), ZIP_AND_S3)
    expect(create(S3Bucket=bucket), BUCKET_AND_KEY)
    expect(create(S3Key="app.zip"), BUCKET_AND_KEY)
    expect(create(), ("InvalidParameterValueException", 400, "Please provide a source for function code."))
    expect(create(S3Bucket="s3://" + bucket, S3Key="app.zip"), (
        "ValidationException", 400,
        f"1 validation error detected: Value 's3://{bucket}' at 'code.s3Bucket' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: ^[0-9A-Za-z\.\-_]*(?<!\.)$"))
    # A deleted object is gone; its delete marker is no code.
    s3.put_object(Bucket=bucket, Key="gone.zip", Body=handler_zip(1))
    marker = s3.delete_object(Bucket=bucket, Key="gone.zip")["VersionId"]
    expect(create(S3Bucket=bucket, S3Key="gone.zip"), NO_SUCH_KEY)
    expect(create(S3Bucket=bucket, S3Key="gone.zip", S3ObjectVersion=marker), get_object_error(
        "MethodNotAllowed", "The specified method is not allowed against this resource."))
    # What is in the bucket but not a zip is refused as an uploaded one is.
    s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"not a zip")
    expect(create(S3Bucket=bucket, S3Key="notes.txt"), (
        "InvalidParameterValueException", 400, "Could not unzip uploaded file. Please check your file, then try to upload again."))
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=name)  # nothing was created

    functions.append(name)
    create_from_s3(lam, name, {"S3Bucket": bucket, "S3Key": "app.zip"})
    sha = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
    update = lambda **code: lambda: lam_raw.update_function_code(FunctionName=name, **code)  # noqa: E731
    expect(update(S3Bucket=missing_bucket, S3Key="app.zip"), NO_SUCH_BUCKET)
    expect(update(S3Bucket=bucket, S3Key="non/existent.zip"), NO_SUCH_KEY)
    expect(update(ZipFile=handler_zip(2), S3Bucket=bucket, S3Key="app.zip"), ZIP_AND_S3)
    expect(update(S3Bucket=bucket), BUCKET_AND_KEY)
    expect(update(S3ObjectVersion="v"), BUCKET_AND_KEY)
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == sha

    layer = unique("s3errlayer")
    publish = lambda **content: lambda: lam_raw.publish_layer_version(LayerName=layer, Content=content)  # noqa: E731
    expect(publish(S3Bucket=missing_bucket, S3Key="app.zip"), NO_SUCH_BUCKET)
    expect(publish(S3Bucket=bucket, S3Key="non/existent.zip"), NO_SUCH_KEY)
    expect(publish(ZipFile=handler_zip(1), S3Bucket=bucket, S3Key="app.zip"), ZIP_AND_S3)
    expect(publish(S3Bucket=bucket), BUCKET_AND_KEY)
    assert lam.list_layer_versions(LayerName=layer)["LayerVersions"] == []


def random_zip(payload_bytes: int) -> bytes:
    """A zip that does not compress: `payload_bytes` of random data stored as they are."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("index.py", "import os\n\ndef handler(event, context):\n"
                                "    return os.path.getsize(os.path.join(os.path.dirname(__file__), 'blob.bin'))\n")
        zf.writestr("blob.bin", os.urandom(payload_bytes))
    return buf.getvalue()


def test_a_package_over_the_direct_upload_limit_is_taken_from_s3(s3, lam, bucket, functions):
    big = random_zip(53 * MB)
    assert 50 * 1024 * 1024 < len(big) < 55 * MB
    name = unique("s3big")
    # Directly in the request it is over Lambda's 50 MB.
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=ROLE, Code={"ZipFile": big})
    code, status, _ = client_error(e)
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    # From S3 only its unzipped size counts.
    s3.put_object(Bucket=bucket, Key="big.zip", Body=big)
    functions.append(name)
    t0 = time.monotonic()
    cfg = create_from_s3(lam, name, {"S3Bucket": bucket, "S3Key": "big.zip"})
    assert cfg["CodeSize"] == len(big)
    assert cfg["CodeSha256"] == sha256_b64(big)
    assert invoke(lam, name).ok() == 53 * MB
    assert time.monotonic() - t0 < 60


def test_the_caller_must_be_allowed_to_read_the_object(server, s3, bucket, functions):
    iam = server.client("iam")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=bucket, Key="app.zip", Body=handler_zip("readable"))["VersionId"]
    user = unique("s3reader")
    iam.create_user(UserName=user)
    lambda_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["lambda:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE},
    ]}
    iam.put_user_policy(UserName=user, PolicyName="lambda", PolicyDocument=json.dumps(lambda_only))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    lam = server.client("lambda", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    me = f"arn:aws:iam::{ACCOUNT}:user/{user}"
    name = unique("s3authz")
    create = lambda **code: lambda: lam.create_function(  # noqa: E731
        FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=ROLE, Code={"S3Bucket": bucket, "S3Key": "app.zip", **code})

    def refused(action):
        return ("AccessDeniedException", 403,
                f"Your access has been denied by S3, please make sure your request credentials have permission to GetObject "
                f"for {bucket}/app.zip. S3 Error Code: AccessDenied. S3 Error Message: User: {me} is not authorized to perform: "
                f"{action} on resource: \"arn:aws:s3:::{bucket}/app.zip\" because no identity-based policy allows the {action} action")

    expect(create(), refused("s3:GetObject"))
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    # A version asked for by id is read with s3:GetObjectVersion.
    expect(create(S3ObjectVersion=version), refused("s3:GetObjectVersion"))
    functions.append(name)
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=ROLE,
                        Code={"S3Bucket": bucket, "S3Key": "app.zip"})
    wait_active(lam, name)
    assert invoke(lam, name).ok()["v"] == "readable"
    # An explicit deny wins over the allow.
    iam.put_user_policy(UserName=user, PolicyName="deny", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/app.zip"}]}))
    with pytest.raises(ClientError) as e:
        lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="app.zip")
    code, status, message = client_error(e)
    assert (code, status) == ("AccessDeniedException", 403)
    assert message.endswith(f"User: {me} is not authorized to perform: s3:GetObject on resource: "
                            f"\"arn:aws:s3:::{bucket}/app.zip\" with an explicit deny in an identity-based policy"), message


def test_nimbus_deploy_s3_deploys_a_zip_from_a_bucket(nimbus_bin, server, s3, lam, bucket, functions):
    s3.put_object(Bucket=bucket, Key="cli/v1.zip", Body=handler_zip("cli-1"))
    s3.put_object(Bucket=bucket, Key="cli/v2.zip", Body=handler_zip("cli-2"))
    name = unique("clis3")
    functions.append(name)
    env = server_env()
    env["NIMBUS_ENDPOINT"] = server.endpoint

    def cli(*args):
        cp = run([nimbus_bin, *args], env=env, timeout=120)
        cp.out, cp.err = cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")
        assert cp.returncode == 0, f"exit={cp.returncode}\nstdout:\n{cp.out}\nstderr:\n{cp.err}"
        return cp

    cli("deploy", "--s3", f"{bucket}/cli/v1.zip", "--name", name, "--runtime", "python3.11", "--handler", "index.handler",
        "--role", ROLE)
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == sha256_b64(handler_zip("cli-1"))
    assert invoke(lam, name).ok()["v"] == "cli-1"
    cp = cli("deploy", "--s3", f"s3://{bucket}/cli/v2.zip", "--name", name, "--output", "json")
    assert json.loads(cp.out)["CodeSha256"] == sha256_b64(handler_zip("cli-2"))
    wait_updated(lam, name)
    assert invoke(lam, name).ok()["v"] == "cli-2"
    # A missing object is AWS's error, and a non-zero exit.
    cp = run([nimbus_bin, "deploy", "--s3", f"{bucket}/cli/none.zip", "--name", name], env=env, timeout=60)
    assert cp.returncode != 0
    assert "S3 Error Code: NoSuchKey" in cp.stderr.decode(errors="replace")
    # The help says how.
    help_text = run([nimbus_bin, "deploy", "--help"], env=env).stdout.decode()
    assert "--s3 <BUCKET/KEY>" in help_text


def test_a_bucket_of_another_account_is_read_when_its_policy_lets_the_caller(server_factory):
    import boto3
    from botocore.config import Config

    from helpers import TRUST_LAMBDA, boto_client

    s = server_factory()
    org = boto_client("organizations", s.endpoint)
    org.create_organization()
    status = org.create_account(Email=f"{unique('team')}@example.com", AccountName="team")["CreateAccountStatus"]
    member = status["AccountId"]
    iam = boto_client("iam", s.endpoint)
    ops = unique("ops")
    iam.create_user(UserName=ops)
    iam.attach_user_policy(UserName=ops, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    ops_key = iam.create_access_key(UserName=ops)["AccessKey"]

    def session_client(service, creds):
        return boto3.session.Session().client(
            service, endpoint_url=s.endpoint, region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds.get("SessionToken"),
            config=Config(retries={"max_attempts": 0}))

    creds = session_client("sts", ops_key).assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole", RoleSessionName="ops")["Credentials"]
    member_lam = session_client("lambda", creds)
    role = session_client("iam", creds).create_role(
        RoleName=unique("fn"), AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))["Role"]["Arn"]

    # The management account's bucket, which the member's administrator may not read yet.
    s3 = boto_client("s3", s.endpoint)
    bucket = unique("shared").lower().replace("_", "-")[:60]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="app.zip", Body=handler_zip("shared"))
    name = unique("xacct")

    def create():
        return member_lam.create_function(FunctionName=name, Runtime="python3.11", Handler="index.handler", Role=role,
                                          Code={"S3Bucket": bucket, "S3Key": "app.zip"})

    with pytest.raises(ClientError) as e:
        create()
    code, status, message = client_error(e)
    assert (code, status) == ("AccessDeniedException", 403), message
    assert message.endswith(f"on resource: \"arn:aws:s3:::{bucket}/app.zip\" because no resource-based policy allows the "
                            "s3:GetObject action"), message
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{member}:root"}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    assert create()["FunctionArn"] == f"arn:aws:lambda:{REGION}:{member}:function:{name}"
    wait_active(member_lam, name)
    assert invoke(member_lam, name).ok()["v"] == "shared"
