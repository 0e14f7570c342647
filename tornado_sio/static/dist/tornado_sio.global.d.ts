/*! tornado-sio browser client, TypeScript declarations (MIT) | source sha256 acdd3f9d9c929b36db3571cef6e691fee78828ba6c5fce2b79155a85e4c0e911 */
// The classic script's global: add this file to a compilation that loads
// tornado_sio.min.js (or /tornado_sio/client.js) with a <script> tag.
declare const io: typeof import("./tornado_sio").io;
