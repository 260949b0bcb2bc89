import type { PDFDocumentProxy, PDFPageProxy } from './pdfjs.js';
import type { RasterImage } from './preprocess.js';

/**
 * Rasterising PDF pages that have no text layer (scans wrapped in a PDF) so they can be OCRed.
 * pdfjs-dist's legacy build runs on Node 20; in Node it creates its canvases with @napi-rs/canvas
 * (its own NodeCanvasFactory), so rendering goes through the document's `canvasFactory`: a canvas
 * from our copy of @napi-rs/canvas could be a different native build from the one pdfjs resolves.
 */

export const OCR_DPI = 300;
/** A 300-dpi letter page is ≈ 8.4 Mpx; a page with an absurd MediaBox is rendered at a lower dpi instead. */
const MAX_RENDER_PIXELS = 40_000_000;
const POINTS_PER_INCH = 72;

export interface RenderedPage extends RasterImage {
  /** Pixels per PDF point, to map OCR pixel coordinates back to page units if needed. */
  scale: number;
}

type RenderParameters = Parameters<PDFPageProxy['render']>[0];

interface NodeCanvas {
  width: number;
  height: number;
  getContext(type: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
}

interface CanvasFactory {
  create(width: number, height: number): { canvas: NodeCanvas };
  destroy(canvasAndContext: { canvas: NodeCanvas }): void;
}

export async function renderPdfPage(
  pdf: PDFDocumentProxy,
  pageNumber: number,
  dpi: number = OCR_DPI,
): Promise<RenderedPage> {
  const page = await pdf.getPage(pageNumber);
  try {
    const unscaled = page.getViewport({ scale: 1 });
    let scale = dpi / POINTS_PER_INCH;
    const pixels = unscaled.width * unscaled.height * scale * scale;
    if (pixels > MAX_RENDER_PIXELS) {
      scale *= Math.sqrt(MAX_RENDER_PIXELS / pixels);
    }
    const viewport = page.getViewport({ scale });
    const width = Math.max(1, Math.floor(viewport.width));
    const height = Math.max(1, Math.floor(viewport.height));
    const factory = pdf.canvasFactory as CanvasFactory;
    const target = factory.create(width, height);
    try {
      // pdfjs types the canvas as a DOM canvas; in Node it is the factory's @napi-rs/canvas one.
      const canvas = target.canvas as unknown as RenderParameters['canvas'];
      await page.render({ canvas, viewport, background: '#ffffff' }).promise;
      const { data } = target.canvas.getContext('2d').getImageData(0, 0, width, height);
      return { width, height, data, scale };
    } finally {
      factory.destroy(target);
    }
  } finally {
    page.cleanup();
  }
}
