/**
 * Loading the server (pdfjs-dist's legacy build among it, which bundles core-js) leaves the hot
 * built-ins native: JSON.parse / JSON.stringify run on every request and Array.prototype.push
 * everywhere, and core-js's JavaScript versions of them cost the whole server.
 */
test('JSON.parse, JSON.stringify and Array.prototype.push are the natives after the server and pdfjs load', async () => {
  const natives = { parse: JSON.parse, stringify: JSON.stringify, push: Array.prototype.push };
  await import('../src/app.js');
  const { getDocument } = await import('../src/documents/pdfjs.js');
  expect(typeof getDocument).toBe('function');
  expect({ parse: JSON.parse === natives.parse, stringify: JSON.stringify === natives.stringify, push: Array.prototype.push === natives.push }).toEqual({ parse: true, stringify: true, push: true });
});
