/**
 * pdfjs-dist, with the process's built-ins left as they were. Its legacy build (the one that runs on
 * Node 20) bundles core-js, which replaces JSON.parse, JSON.stringify and Array.prototype.push for
 * the whole process with JavaScript polyfills of spec corners Node 20 lacks (JSON.rawJSON, push onto
 * a non-writable length) that pdfjs never uses. Every request body, every response and every array
 * push of the server then ran through them. The natives are put back as soon as pdfjs has loaded.
 */
import { NATIVES } from './natives.js';
import * as pdfjs from 'pdfjs-dist/legacy/build/pdf.mjs';

JSON.parse = NATIVES.parse;
JSON.stringify = NATIVES.stringify;
Array.prototype.push = NATIVES.push;

export const { getDocument, Util } = pdfjs;
export type { PDFDocumentProxy, PDFPageProxy } from 'pdfjs-dist/legacy/build/pdf.mjs';
