/** The ancestors whose existence a WebDAV push may have to ensure (services/transfer/push/parent-collections.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parentCollections } from '../../services/transfer/push/parent-collections.js';

test('parent collections of a request path, deepest first, without the query or the root', () => {
  assert.deepEqual(parentCollections('/a/b/c.dat'), ['/a/b', '/a']);
  assert.deepEqual(parentCollections('/a/b/c.dat?authz=token/x'), ['/a/b', '/a']);
  assert.deepEqual(parentCollections('/top.dat'), []);
  assert.deepEqual(parentCollections('/a//b/c'), ['/a//b', '/a']);
  assert.deepEqual(parentCollections('/dir/sub/'), ['/dir']);
});
