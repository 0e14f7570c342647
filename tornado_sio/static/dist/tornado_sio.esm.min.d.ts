/*! tornado-sio browser client, TypeScript declarations (MIT) | source sha256 8ce6b8112065154a8ee7c05174b2dc9458a86f423dd53147856bb0632b31f664 */
export * from "./tornado_sio";
export { default } from "./tornado_sio";
