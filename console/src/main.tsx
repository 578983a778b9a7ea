//! Entry point: mounts the console on the page the server serves at `/`.
import { render } from "preact";
import "./style.css";
import { App, initialTheme } from "./App";

// Before the first paint, so nothing flashes in the other theme.
document.documentElement.dataset.theme = initialTheme();

render(<App />, document.getElementById("app")!);
