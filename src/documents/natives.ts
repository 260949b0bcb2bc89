/**
 * The built-ins pdfjs-dist's legacy build replaces, captured before it loads (see pdfjs.ts). This
 * module imports nothing, so it is evaluated before pdfjs wherever pdfjs.ts is imported.
 */
export const NATIVES = { parse: JSON.parse, stringify: JSON.stringify, push: Array.prototype.push };
