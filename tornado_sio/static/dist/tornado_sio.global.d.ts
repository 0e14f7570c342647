/*! tornado-sio browser client, TypeScript declarations (MIT) | source sha256 8ce6b8112065154a8ee7c05174b2dc9458a86f423dd53147856bb0632b31f664 */
// The classic script's global: add this file to a compilation that loads
// tornado_sio.min.js (or /tornado_sio/client.js) with a <script> tag.
declare const io: typeof import("./tornado_sio").io;
