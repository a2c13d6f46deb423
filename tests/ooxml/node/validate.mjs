// Microsoft's Open XML SDK validator (npm @ooxml-tools/validate, pinned in package-lock.json) for the tests.
//
// One process validates many packages: each line on stdin is a JSON request
//   {"path": "/abs/book.xlsm", "format": "xlsx", "version": "Microsoft365"}
// and each answer is one JSON line on stdout, in order:
//   {"errors": [{"id", "description", "part", "xpath", "type"}, ...]}  or  {"failure": "why the SDK could not check it"}
// tests/ooxml/sdk.py starts it once per test process; README.md there describes the use.
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";

import validate, { ready } from "@ooxml-tools/validate";

await ready();
process.stdout.write(JSON.stringify({ ready: true }) + "\n");

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  let answer;
  try {
    const { path, format, version } = JSON.parse(line);
    const results = await validate(await readFile(path), format ?? "xlsx", version ?? "Microsoft365");
    answer = {
      errors: results.map((r) => ({
        id: r.id,
        description: r.description,
        part: r.path?.partUri ?? "",
        xpath: r.path?.xpath ?? "",
        type: r.errorType,
      })),
    };
  } catch (err) {
    answer = { failure: String(err?.message ?? err) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
process.exit(0);
