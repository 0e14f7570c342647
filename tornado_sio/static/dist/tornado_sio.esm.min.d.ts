/*! tornado-sio browser client, TypeScript declarations (MIT) | source sha256 acdd3f9d9c929b36db3571cef6e691fee78828ba6c5fce2b79155a85e4c0e911 */
export * from "./tornado_sio";
export { default } from "./tornado_sio";
