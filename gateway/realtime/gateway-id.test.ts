import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveGatewayId } from './gateway-id.js';

void test('a configured id is used as is; a bad one is refused', () => {
  assert.equal(resolveGatewayId('gw-1', 'h', 8000), 'gw-1');
  assert.throws(() => resolveGatewayId('gw.1', 'h', 8000), /DALSTON_GATEWAY_ID/);
});

void test('derived from host and port: stable across restarts, distinct per slot, topic-safe', () => {
  const a = resolveGatewayId(undefined, 'Node-7.example.com', 8000);
  assert.equal(a, resolveGatewayId(undefined, 'Node-7.example.com', 8000));
  assert.notEqual(a, resolveGatewayId(undefined, 'Node-7.example.com', 8001));
  assert.match(a, /^[a-z0-9-]+$/);
});
