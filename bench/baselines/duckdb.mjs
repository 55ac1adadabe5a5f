#!/usr/bin/env node
// duckdb.mjs -- DuckDB peer for the sluice sales benchmark.
// Usage: node duckdb.mjs QUERY FILE      QUERY: by-category | region-minute | top-products
//        node duckdb.mjs --version
// Prints CSV (header first) on stdout, in exactly the format sluice's `sales` prints.
// Exactness: price is read as DECIMAL(18,2) (stored as int64 cents), revenue is
// summed as integer cents and formatted as d.dd. Uses all cores (threads = nproc).
import os from 'node:os';
import { DuckDBInstance, version } from '@duckdb/node-api';

const [query, file] = process.argv.slice(2);
if (query === '--version') { console.log(`duckdb ${version()} (@duckdb/node-api)`); process.exit(0); }
if (!query || !file) {
  console.error('usage: node duckdb.mjs QUERY FILE');
  process.exit(2);
}

const lit = (s) => `'${s.replaceAll("'", "''")}'`;
const src = `read_csv(${lit(file)}, header = true, delim = ',', quote = '', escape = '',
  auto_detect = false, parallel = true,
  columns = {'ts': 'BIGINT', 'order_id': 'BIGINT', 'user_id': 'BIGINT', 'region': 'VARCHAR',
             'category': 'VARCHAR', 'product_id': 'BIGINT', 'qty': 'BIGINT',
             'price': 'DECIMAL(18,2)'})`;
const cents = `qty * CAST(price * 100 AS BIGINT)`;
const money = (x) => `printf('%d.%02d', ${x} // 100, ${x} % 100)`;

const sql = {
  'by-category': {
    header: 'category,cnt,revenue',
    text: `SELECT category || ',' || count(*) || ',' || ${money(`sum(${cents})`)} AS line
           FROM ${src} GROUP BY category ORDER BY category`,
  },
  'region-minute': {
    header: 'region,window_start,cnt,revenue',
    text: `SELECT region || ',' || (ts - ts % 60000) || ',' || count(*) || ',' || ${money(`sum(${cents})`)} AS line
           FROM ${src} GROUP BY region, ts - ts % 60000 ORDER BY region, ts - ts % 60000`,
  },
  'top-products': {
    header: 'product_id,revenue',
    text: `SELECT product_id || ',' || ${money('rev')} AS line FROM (
             SELECT product_id, sum(${cents}) AS rev FROM ${src} GROUP BY product_id
             ORDER BY rev DESC, product_id ASC LIMIT 10) ORDER BY rev DESC, product_id ASC`,
  },
}[query];
if (!sql) {
  console.error(`duckdb.mjs: unknown query '${query}'`);
  process.exit(2);
}

const threads = String(os.availableParallelism());
const instance = await DuckDBInstance.create(':memory:', { threads });
const con = await instance.connect();
const reader = await con.runAndReadAll(sql.text);
const lines = [sql.header];
for (const [line] of reader.getRows()) lines.push(line);
process.stdout.write(lines.join('\n') + '\n');
