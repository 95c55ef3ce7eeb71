// Checks every `pattern` in api/openapi.yaml with the regular expressions of
// JavaScript (ECMA-262), as OpenAPI 3.1 validators read them, and as Postman's
// and Portman's validators do: without the `u` flag. Run by
// `scripts/test.sh lint` (node scripts/spec-patterns.mjs).
//
// Each pattern must compile without and with the `u` flag, match the values
// listed for it below (values the server accepts; the Unicode rules
// themselves live in the schema's description and in internal/task) the same
// way in both modes, and refuse the values listed as refused. A pattern that
// is not listed here fails, so a new one comes with its examples.
// api/patterns_test.go holds the same patterns to the server's own rules.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const cases = {
	'/components/schemas/TaskTitle/pattern': {
		accepted: ['Buy milk', 'Café crème', 'Задача', 'Задача 42', 'Tâche numéro 1', '任务清单', 'e\u0301te\u0301 42', '𝒜𝒷𝒸 42', 'Plan the sprint 42'],
		refused: ['Buy milk!', 'tab\there', 'semi;colon', 'new\nline'],
	},
	'/components/schemas/RegisterRequest/properties/username/pattern': {
		accepted: ['alice', 'bob.smith', 'josé', 'Зоя_42', 'a+b-c@d.e', '用户', 'ünïcödé'],
		refused: ['no spaces', 'semi;colon', 'slash/', 'quote"'],
	},
	'/components/headers/WWW-Authenticate/schema/pattern': {
		accepted: ['Bearer realm="api"', 'Bearer realm="api", error="invalid_token", error_description="The access token has expired."'],
		refused: ['Basic realm="api"'],
	},
	'/components/schemas/APIKey/properties/prefix/pattern': {
		accepted: ['tm_Qm7vX2pL'],
		refused: ['xx_Qm7vX2pL'],
	},
	'/components/schemas/APIKeyCreated/allOf/1/properties/key/pattern': {
		accepted: ['tm_Qm7vX2pL.9fKz3RtB8wYc1NvE6hUaJd4sXo0gLmPq'],
		refused: ['Qm7vX2pL.9fKz3RtB8wYc1NvE6hUaJd4sXo0gLmPq'],
	},
};

// Constructs that ECMA-262 without `u` reads differently from other engines
// (or from itself with `u`), or that RE2 (the Go server's tests) lacks.
const nonPortable = [
	[/\\[pP]/, '\\p{...} is the letters "p{...}" without the u flag'],
	[/\\u/, '\\u escapes are not in RE2 or Python; use \\xHH'],
	[/\\[wWdDsSbB]/, 'shorthand classes are ASCII in ECMA-262 and Unicode in other engines; use an explicit class'],
	[/\(\?(?!:)/, 'lookarounds, named groups and inline flags are missing from RE2 or ECMA-262'],
	[/\\[kcAzZQEGhHRXN]/, 'an escape without a portable meaning'],
];

const spec = parse(readFileSync(new URL('../api/openapi.yaml', import.meta.url), 'utf8'));
const found = [];
(function walk(ptr, v) {
	if (Array.isArray(v)) {
		v.forEach((child, i) => walk(`${ptr}/${i}`, child));
	} else if (v && typeof v === 'object') {
		for (const [k, child] of Object.entries(v)) {
			if (k === 'pattern' && typeof child === 'string' && !ptr.endsWith('/properties')) {
				found.push([`${ptr}/pattern`, child]);
			} else {
				walk(`${ptr}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`, child);
			}
		}
	}
})('', spec);

const problems = [];
for (const [ptr, source] of found) {
	const say = (msg) => problems.push(`${ptr}: pattern ${JSON.stringify(source)} ${msg}`);
	for (const [construct, why] of nonPortable) {
		if (construct.test(source)) say(`is not portable: ${why}`);
	}
	let plain, unicode;
	try {
		plain = new RegExp(source);
		unicode = new RegExp(source, 'u');
	} catch (err) {
		say(`does not compile: ${err.message}`);
		continue;
	}
	const c = cases[ptr];
	if (!c) {
		say('has no examples in scripts/spec-patterns.mjs; add the values it must accept and refuse');
		continue;
	}
	for (const v of c.accepted) {
		if (!plain.test(v)) say(`refuses ${JSON.stringify(v)} without the u flag; the server accepts it`);
		if (!unicode.test(v)) say(`refuses ${JSON.stringify(v)} with the u flag; the server accepts it`);
	}
	for (const v of c.refused) {
		if (plain.test(v) || unicode.test(v)) say(`accepts ${JSON.stringify(v)}, which the server refuses`);
	}
}
for (const ptr of Object.keys(cases)) {
	if (!found.some(([p]) => p === ptr)) problems.push(`${ptr}: no pattern there any more; update scripts/spec-patterns.mjs`);
}
if (problems.length > 0) {
	console.error(problems.join('\n'));
	process.exit(1);
}
console.log(`spec-patterns: ${found.length} patterns in api/openapi.yaml are portable`);
