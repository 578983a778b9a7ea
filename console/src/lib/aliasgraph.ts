//! The picture of aliases and versions: boxes for aliases (left) and versions (right) and an
//! arrow for each route, weighted, an alias pointing at another alias included.

export interface AliasInfo {
  name: string;
  target: string;
  /** The additional version's weight (0–1), if the alias splits traffic. */
  extra?: { version: string; weight: number };
}

export interface Node {
  id: string;
  label: string;
  kind: "alias" | "version";
  x: number;
  y: number;
}

export interface Edge {
  from: string;
  to: string;
  /** Share of the alias's traffic in percent. */
  percent: number;
}

export const BOX = { w: 150, h: 36, gapY: 16, left: 10, right: 330 };

export function layout(aliases: AliasInfo[], versions: string[]): { nodes: Node[]; edges: Edge[]; height: number } {
  const aliasNames = new Set(aliases.map((a) => a.name));
  const nodes: Node[] = [];
  aliases.forEach((a, i) =>
    nodes.push({ id: `alias:${a.name}`, label: a.name, kind: "alias", x: BOX.left, y: 10 + i * (BOX.h + BOX.gapY) }),
  );
  const shown = versions.filter((v) => v !== "$LATEST" || aliases.some((a) => a.target === v));
  const wanted = new Set(shown);
  for (const a of aliases) {
    if (!aliasNames.has(a.target)) wanted.add(a.target);
    if (a.extra) wanted.add(a.extra.version);
  }
  const order = [...wanted].sort((a, b) => (a === "$LATEST" ? 1 : b === "$LATEST" ? -1 : Number(b) - Number(a)));
  order.forEach((v, i) => nodes.push({ id: `version:${v}`, label: v === "$LATEST" ? v : `Version ${v}`, kind: "version", x: BOX.right, y: 10 + i * (BOX.h + BOX.gapY) }));
  const edges: Edge[] = [];
  for (const a of aliases) {
    const extra = a.extra ? Math.round(a.extra.weight * 1000) / 10 : 0;
    const to = aliasNames.has(a.target) ? `alias:${a.target}` : `version:${a.target}`;
    edges.push({ from: `alias:${a.name}`, to, percent: Math.round((100 - extra) * 10) / 10 });
    if (a.extra) edges.push({ from: `alias:${a.name}`, to: `version:${a.extra.version}`, percent: extra });
  }
  const rows = Math.max(aliases.length, order.length, 1);
  return { nodes, edges, height: 20 + rows * (BOX.h + BOX.gapY) };
}
