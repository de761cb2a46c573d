// The guard in front of every `nft -f` the agent runs: Switchyard owns exactly one table (inet
// switchyard), so a text that names any other table, or no table at all (nft defaults the family to ip),
// is refused before it reaches the kernel; no bug upstream can flush the ruleset or touch another
// owner's table (kube-proxy, firewalld, the admin's own rules). Pure: text in, a reason or undefined out.
/** The one table Switchyard owns. */
export const SWITCHYARD_TABLE_FAMILY = "inet";
export const SWITCHYARD_TABLE_NAME = "switchyard";

const FAMILIES = new Set(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);
const VERBS = new Set(["add", "create", "delete", "destroy", "flush", "insert", "replace", "reset"]);
const OBJECTS = new Set(["table", "chain", "rule", "set", "map", "element", "counter", "quota", "limit", "ct", "flowtable", "secmark", "synproxy"]);

/**
 * Returns why `text` would touch something other than `inet switchyard`, or undefined when it only touches
 * that table. Checked are the top-level statements (everything outside braces); the body of a
 * `table inet switchyard { ... }` block can only ever name objects of that table. Allowed at top level:
 * `table inet switchyard [{...}]`, `<verb> <object> inet switchyard ...`, `define`, comments.
 */
export function checkNftScope(text: string): string | undefined {
  for (const statement of topLevelStatements(text)) {
    const words = statement.split(/\s+/).filter((w) => w.length > 0);
    const [first, second] = words;
    if (first === undefined) continue;
    if (first === "define") continue;
    let rest: string[];
    if (first === "table") rest = words.slice(1);
    else if (VERBS.has(first) && second !== undefined && OBJECTS.has(second)) rest = words.slice(second === "ct" ? 3 : 2);
    else return `statement "${statement}" is not an operation on table ${SWITCHYARD_TABLE_FAMILY} ${SWITCHYARD_TABLE_NAME}`;
    // nft defaults the family to `ip` when it is omitted, so a missing family means another table.
    const family = rest[0] !== undefined && FAMILIES.has(rest[0]) ? rest[0] : "ip";
    const table = rest[0] !== undefined && FAMILIES.has(rest[0]) ? rest[1] : rest[0];
    if (family !== SWITCHYARD_TABLE_FAMILY || table !== SWITCHYARD_TABLE_NAME) {
      return `statement "${statement}" touches table ${family} ${table ?? "(none)"}, not ${SWITCHYARD_TABLE_FAMILY} ${SWITCHYARD_TABLE_NAME}`;
    }
  }
  return undefined;
}

/** The text outside any braces, split into statements at newlines and `;`, with comments and strings handled. */
function topLevelStatements(text: string): string[] {
  const statements: string[] = [];
  let depth = 0;
  let current = "";
  let inString = false;
  let inComment = false;
  const flush = (): void => {
    const s = current.trim();
    if (s.length > 0) statements.push(s);
    current = "";
  };
  for (const ch of text) {
    if (inComment) {
      if (ch === "\n") {
        inComment = false;
        if (depth === 0) flush();
      }
      continue;
    }
    if (inString) {
      if (ch === '"') inString = false;
      if (depth === 0) current += ch;
      continue;
    }
    if (ch === "#") inComment = true;
    else if (ch === '"') {
      inString = true;
      if (depth === 0) current += ch;
    } else if (ch === "{") {
      if (depth === 0) current += " ";
      depth++;
    } else if (ch === "}") depth = Math.max(0, depth - 1);
    else if (depth === 0) {
      if (ch === "\n" || ch === ";") flush();
      else current += ch;
    }
  }
  flush();
  return statements;
}

