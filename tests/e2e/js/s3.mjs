// S3 through the AWS SDK for JavaScript v3: a streamed upload of unknown length (sent
// aws-chunked with a trailing CRC32, as the SDK sends every stream), a small string body, a
// listing and a ranged read. Prints what the test checks as JSON.
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { S3Client, PutObjectCommand, ListObjectsV2Command, GetObjectCommand } from "@aws-sdk/client-s3";

const client = new S3Client({
  endpoint: process.env.NIMBUS_ENDPOINT,
  region: process.env.AWS_REGION,
  forcePathStyle: true,
  maxAttempts: 1,
});
const Bucket = process.env.BUCKET;

const pieces = Array.from({ length: 24 }, (_, i) => randomBytes(64 * 1024 + i));
const all = Buffer.concat(pieces);
const put = await client.send(
  new PutObjectCommand({
    Bucket,
    Key: "js/stream.bin",
    Body: Readable.from(pieces),
    ContentLength: all.length,
    ChecksumAlgorithm: "CRC32",
  }),
);
await client.send(new PutObjectCommand({ Bucket, Key: "js/small.txt", Body: "small body" }));
const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix: "js/" }));
const ranged = await client.send(new GetObjectCommand({ Bucket, Key: "js/small.txt", Range: "bytes=0-4" }));
const text = await ranged.Body.transformToString();
if (text !== "small") throw new Error(`ranged read gave ${JSON.stringify(text)}`);
console.log(
  JSON.stringify({
    size: all.length,
    sha256: createHash("sha256").update(all).digest("hex"),
    checksum: put.ChecksumCRC32,
    listed: listed.Contents.map((o) => o.Key),
  }),
);
