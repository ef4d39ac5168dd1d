import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DATASETS, Dataset } from '../definition/layout';
import { required } from '../required';

/**
 * Deterministic STEDI-shaped landing data: the same options always give the same bytes.
 * It keeps the quirks of the real files (docs/architecture.md, "The STEDI data"): consent missing
 * for about half the customers (the key is absent, not null), several accelerometer readings per
 * user and millisecond, step-trainer readings at the same milliseconds as the owner's accelerometer
 * readings, and some customers whose readings share milliseconds with another customer's.
 */
export interface GenerateOptions {
  customers: number;
  seed?: number;
  /** Share (0..1) of extra malformed lines mixed into every file. */
  badLineRate?: number;
  /** Records per file, as the real drops hold 10,000. */
  recordsPerFile?: number;
}

export interface GeneratedFile {
  dataset: Dataset;
  name: string;
  records: number;
  badLines: number;
}

/** Where each dataset's files go: `drop` gives DIR/<dataset>/, `lake` gives DIR/<dataset>/landing/. */
export type OutputLayout = 'drop' | 'lake';

const FIRST = [
  'Santosh',
  'Ben',
  'Jane',
  'Edward',
  'Sarah',
  'Frank',
  'Lyn',
  'Jerry',
  'Danny',
  'Chris',
  'Liz',
  'Spencer',
  'Trevor',
  'Bobby',
  'Gail',
  'Kate',
  'John',
  'Neil',
  'Larry',
  'Senthil',
  'Mohammed',
  'Eduardo',
  'Sean',
  'Steph',
  'Rick',
  'David',
  'Jacob',
  'Anna',
  'Ahmed',
  'Mei',
  'Olga',
  'Priya',
  'Kwame',
  'Lucia',
  'Hiro',
  'Ines',
  'Tom',
  'Nora',
  'Omar',
  'Zoe',
];
const LAST = [
  'Clayton',
  'Khatib',
  'Lincoln',
  'Mitra',
  'Hansen',
  'Lewis',
  'Davis',
  'Stanford',
  'Anandh',
  'Jackson',
  'Ahmed',
  'Kim',
  'Wu',
  'Armstrong',
  'Huey',
  'Aristotle',
  'Alexander',
  'Taylor',
  'Fibonnaci',
  'Gonzalez',
  'Miller',
  'Garcia',
  'Li',
  'Nakamura',
  'Okafor',
  'Petrova',
  'Singh',
  'Silva',
  'Rossi',
  'Dubois',
];

const START_MS = 1655560000000; // 2022-06-18, as in the real data
const ACCELEROMETER_PER_STEP = [2, 3, 3, 4]; // real data: ~2.8 accelerometer readings per step-trainer reading
const STEPS_PER_CUSTOMER = 30; // real data: 28,680 step-trainer readings for 956 customers

/** mulberry32: a small, fast, seedable PRNG. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One of `items`, chosen by one draw of `rand`. */
function pick<T>(rand: () => number, items: readonly T[]): T {
  return required(items[Math.floor(rand() * items.length)], 'an item to pick (the list is empty)');
}

class FileWriter {
  private lines: string[] = [];
  private bad = 0;
  readonly files: GeneratedFile[] = [];

  constructor(
    private readonly dataset: Dataset,
    private readonly dir: string,
    private readonly perFile: number,
    private readonly rand: () => number,
    private readonly badLineRate: number,
    private readonly makeBadLine: (rand: () => number, good: string) => string,
  ) {}

  async add(line: string): Promise<void> {
    if (this.badLineRate > 0 && this.rand() < this.badLineRate) {
      this.lines.push(this.makeBadLine(this.rand, line));
      this.bad++;
    }
    this.lines.push(line);
    if (this.lines.length - this.bad >= this.perFile) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.lines.length === 0) return;
    const name = `${this.dataset}-${1691348231000 + this.files.length}.json`;
    await writeFile(path.join(this.dir, name), `${this.lines.join('\n')}\n`);
    this.files.push({ dataset: this.dataset, name, records: this.lines.length - this.bad, badLines: this.bad });
    this.lines = [];
    this.bad = 0;
  }
}

/** A malformed variant of a good line: each kind the pipeline must quarantine. */
function badLine(rand: () => number, good: string): string {
  const record = JSON.parse(good) as Record<string, unknown>;
  const keys = Object.keys(record);
  switch (Math.floor(rand() * 5)) {
    case 0:
      return good.slice(0, Math.max(1, Math.floor(good.length / 2))); // truncated: not valid JSON
    case 1:
      return JSON.stringify(Object.values(record)); // an array, not an object
    case 2: {
      const key = pick(rand, keys);
      const { [key]: _dropped, ...rest } = record;
      void _dropped;
      return JSON.stringify(rest); // a missing field
    }
    case 3: {
      const key = pick(rand, keys);
      return JSON.stringify({ ...record, [key]: typeof record[key] === 'string' ? 12345 : 'not a number' }); // wrong type
    }
    default:
      return JSON.stringify(null);
  }
}

/** Written like Python's json.dumps (", " and ": "), as the real customer file is. */
function pythonStyleJson(record: Record<string, unknown>): string {
  return `{${Object.entries(record)
    .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(', ')}}`;
}

function uuid(rand: () => number): string {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(rand() * 4)]}${hex(3)}-${hex(12)}`;
}

export async function generate(
  outDir: string,
  layout: OutputLayout,
  options: GenerateOptions,
): Promise<GeneratedFile[]> {
  const { customers, seed = 1, badLineRate = 0, recordsPerFile = 10_000 } = options;
  if (!Number.isInteger(customers) || customers < 1)
    throw new RangeError(`customers must be a whole number >= 1, got ${customers}`);
  if (!(badLineRate >= 0 && badLineRate < 1))
    throw new RangeError(`bad-line rate must be in [0, 1), got ${badLineRate}`);
  const rand = random(seed);
  const writers = {} as Record<Dataset, FileWriter>;
  for (const dataset of DATASETS) {
    const dir = layout === 'lake' ? path.join(outDir, dataset, 'landing') : path.join(outDir, dataset);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    writers[dataset] = new FileWriter(
      dataset,
      dir,
      recordsPerFile,
      random(seed * 7919 + dataset.length),
      badLineRate,
      badLine,
    );
  }

  const usedEmails = new Map<string, number>();
  let previousTimes: number[] = [];
  for (let i = 0; i < customers; i++) {
    const first = pick(rand, FIRST);
    const last = pick(rand, LAST);
    const base = `${first}.${last}`;
    const n = usedEmails.get(base) ?? 0;
    usedEmails.set(base, n + 1);
    const email = `${n === 0 ? base : `${base}${n}`}@test.com`;
    const serialNumber = uuid(rand);
    const registrationDate = START_MS + i * 37 + Math.floor(rand() * 1000);
    // Every tenth customer takes readings at the very milliseconds of the customer before, so
    // two customers' readings share milliseconds (the known bug of timestamp-only joins).
    let times: number[];
    if (i % 10 === 1) {
      times = previousTimes;
    } else {
      times = [];
      let t = registrationDate + 60_000 + Math.floor(rand() * 600_000);
      for (let s = 0; s < STEPS_PER_CUSTOMER; s++) times.push((t += 500 + Math.floor(rand() * 2000)));
    }
    previousTimes = times;
    const readingsStart = required(times[0], 'the time of the first reading');
    const consents = rand() < 0.5;
    // Consent lands part-way through some sessions, so 'since-consent' has readings to leave out.
    const consentDate = readingsStart + (rand() < 0.2 ? 15_000 : -1000);
    const birthYear = rand() < 0.05 ? 900 + Math.floor(rand() * 99) : 1930 + Math.floor(rand() * 75);
    const customer: Record<string, unknown> = {
      customerName: `${first} ${last}`,
      email,
      phone: '8015551212',
      birthDay: `${birthYear}-01-01`,
      serialNumber,
      registrationDate,
      lastUpdateDate: registrationDate,
    };
    if (consents) customer.shareWithResearchAsOfDate = consentDate;
    if (rand() < 0.5) customer.shareWithPublicAsOfDate = registrationDate;
    if (rand() < 0.5) customer.shareWithFriendsAsOfDate = registrationDate;
    await writers.customer.add(pythonStyleJson(customer));
    // A few customers update their record later: the latest lastUpdateDate must win.
    if (rand() < 0.02)
      await writers.customer.add(pythonStyleJson({ ...customer, lastUpdateDate: registrationDate + 86_400_000 }));

    for (const at of times) {
      await writers.step_trainer.add(
        `{"sensorReadingTime":${at},"serialNumber":"${serialNumber}","distanceFromObject":${201 + Math.floor(rand() * 100)}}`,
      );
      const repeats = pick(rand, ACCELEROMETER_PER_STEP);
      for (let r = 0; r < repeats; r++) {
        const axis = () => pick(rand, ['-1.0', '0.0', '1.0']);
        await writers.accelerometer.add(
          `{"user":"${email}","timestamp":${at},"x":${axis()},"y":${axis()},"z":${axis()}}`,
        );
      }
    }
  }
  for (const writer of Object.values(writers)) await writer.flush();
  return Object.values(writers).flatMap((w) => w.files);
}
