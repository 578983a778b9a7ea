//! Entry point: mounts the console on the page the server serves at `/`.
import { render } from "preact";
import "./style.css";
import { App } from "./App";

render(<App />, document.getElementById("app")!);
