// A role assumed through STS with the JS SDK. The administrator (with the JS IAM client)
// makes a user that may assume a role and the role, which trusts that user and may invoke
// one function. The user assumes it; the session's temporary credentials then sign an
// allowed and a denied call. Root may not assume roles; a session key without its token is
// no key.
//
// input: {endpoint, region, credentials, userName, roleName, allowedFunction, otherFunction}

import {
  IAMClient, CreateUserCommand, PutUserPolicyCommand, CreateAccessKeyCommand, CreateRoleCommand, PutRolePolicyCommand,
} from "@aws-sdk/client-iam";
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";
import { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { input, config, attempt, plain, report } from "./lib.mjs";

const iam = new IAMClient(config(input.credentials));
const policy = (...Statement) => JSON.stringify({ Version: "2012-10-17", Statement });
const out = {};

const user = (await iam.send(new CreateUserCommand({ UserName: input.userName }))).User;
const role = (await iam.send(new CreateRoleCommand({
  RoleName: input.roleName,
  AssumeRolePolicyDocument: policy({ Effect: "Allow", Principal: { AWS: user.Arn }, Action: "sts:AssumeRole" }),
}))).Role;
await iam.send(new PutRolePolicyCommand({
  RoleName: input.roleName, PolicyName: "invoke-one",
  PolicyDocument: policy({ Effect: "Allow", Action: "lambda:InvokeFunction", Resource: input.allowedFunction.arn }),
}));
await iam.send(new PutUserPolicyCommand({
  UserName: input.userName, PolicyName: "assume",
  PolicyDocument: policy({ Effect: "Allow", Action: "sts:AssumeRole", Resource: role.Arn }),
}));
const key = (await iam.send(new CreateAccessKeyCommand({ UserName: input.userName }))).AccessKey;
out.role = { Arn: role.Arn, RoleId: role.RoleId };

const assume = (credentials) => attempt(async () => plain(await new STSClient(config(credentials)).send(new AssumeRoleCommand({
  RoleArn: role.Arn, RoleSessionName: "js-session", DurationSeconds: 900,
}))));
out.assumeAsRoot = await assume(input.credentials);
out.assume = await assume({ accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });
if (!out.assume.ok) {
  report(out);
  process.exit(0);
}
const c = out.assume.ok.Credentials;
const session = {
  accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: new Date(c.Expiration),
};

const lambda = new LambdaClient(config(session));
const invoke = (client, fn) => attempt(async () => {
  const r = await client.send(new InvokeCommand({ FunctionName: fn.name, Payload: JSON.stringify({ as: "session" }) }));
  return { StatusCode: r.StatusCode, Payload: JSON.parse(new TextDecoder().decode(r.Payload)) };
});
out.whoami = await attempt(async () => plain(await new STSClient(config(session)).send(new GetCallerIdentityCommand({}))));
out.invokeAllowed = await invoke(lambda, input.allowedFunction);
out.invokeOther = await invoke(lambda, input.otherFunction);
const withoutToken = new LambdaClient(config({ accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey }));
out.invokeWithoutToken = await invoke(withoutToken, input.allowedFunction);
report(out);
