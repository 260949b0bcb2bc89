/** Every published instrument, primary first within each condition. */
import { breastMarkers } from './breast.js';
import { pceAscvd, preventAscvd, preventStroke } from './cardiovascular.js';
import { adaGlycaemia, adaRiskTest, findrisc } from './glycaemia.js';
import type { Instrument } from './instrument.js';
import { ckdEpi, kfre4 } from './kidney.js';
import { apriInstrument, fib4Instrument } from './liver.js';
import { whoAnaemia } from './anaemia.js';
import { cha2ds2vascInstrument } from './stroke-af.js';
import { thyroidInstrument } from './thyroid.js';

export const INSTRUMENTS: readonly Instrument[] = [
  adaGlycaemia, findrisc, adaRiskTest,
  preventAscvd, pceAscvd,
  preventStroke, cha2ds2vascInstrument,
  ckdEpi, kfre4,
  fib4Instrument, apriInstrument,
  whoAnaemia,
  thyroidInstrument,
  breastMarkers,
];
