import { describe, expect, it } from "vitest";
import { layout } from "./aliasgraph";

describe("alias graph", () => {
  it("routes a weighted alias to two versions", () => {
    const g = layout([{ name: "live", target: "2", extra: { version: "3", weight: 0.1 } }], ["$LATEST", "1", "2", "3"]);
    expect(g.edges).toEqual([
      { from: "alias:live", to: "version:2", percent: 90 },
      { from: "alias:live", to: "version:3", percent: 10 },
    ]);
    // Newest version first; $LATEST only when an alias points at it.
    expect(g.nodes.filter((n) => n.kind === "version").map((n) => n.label)).toEqual(["Version 3", "Version 2", "Version 1"]);
  });

  it("an alias pointing at an alias is an arrow between aliases", () => {
    const g = layout(
      [
        { name: "prod", target: "live" },
        { name: "live", target: "$LATEST" },
      ],
      ["$LATEST", "1"],
    );
    expect(g.edges).toEqual([
      { from: "alias:prod", to: "alias:live", percent: 100 },
      { from: "alias:live", to: "version:$LATEST", percent: 100 },
    ]);
    expect(g.nodes.map((n) => n.id)).toEqual(["alias:prod", "alias:live", "version:1", "version:$LATEST"]);
  });

  it("no aliases: the versions alone", () => {
    const g = layout([], ["$LATEST", "1"]);
    expect(g.edges).toEqual([]);
    expect(g.nodes.map((n) => n.id)).toEqual(["version:1"]);
  });
});
