import { describe, expect, it } from 'vitest';
import { EntryList } from '../../dataplane/entry-list.ts';

describe('EntryList', () => {
  it('adds and removes members in any order, counting them', () => {
    const list = new EntryList<string>();
    const a = list.add('a');
    const b = list.add('b');
    const c = list.add('c');
    expect(list.size).toBe(3);
    expect(list.values().sort()).toEqual(['a', 'b', 'c']);
    list.remove(b);
    expect(list.values().sort()).toEqual(['a', 'c']);
    list.remove(c);
    list.remove(a);
    expect(list.size).toBe(0);
    expect(list.values()).toEqual([]);
    list.add('d');
    expect(list.values()).toEqual(['d']);
  });

  it('ignores a second removal of the same entry', () => {
    const list = new EntryList<number>();
    const one = list.add(1);
    list.add(2);
    list.remove(one);
    list.remove(one);
    expect(list.size).toBe(1);
    expect(list.values()).toEqual([2]);
  });

  it('drops every reference a removed entry held', () => {
    const list = new EntryList<object>();
    const first = list.add({});
    const middle = list.add({});
    list.add({});
    list.remove(middle);
    // A removed entry must not keep its member or its neighbours reachable.
    expect(middle.value).toBeUndefined();
    expect(Object.values(middle).every((v) => v === undefined)).toBe(true);
    list.remove(first);
    expect(Object.values(first).every((v) => v === undefined)).toBe(true);
  });

  it('keeps the right members through many interleaved adds and removals', () => {
    const list = new EntryList<number>();
    const live = new Map<number, ReturnType<typeof list.add>>();
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 5000; i++) {
      if (live.size > 0 && rand() < 0.5) {
        const keys = [...live.keys()];
        const k = keys[Math.floor(rand() * keys.length)]!;
        list.remove(live.get(k)!);
        live.delete(k);
      } else {
        live.set(i, list.add(i));
      }
      expect(list.size).toBe(live.size);
    }
    expect(list.values().sort((x, y) => x - y)).toEqual([...live.keys()].sort((x, y) => x - y));
  });
});
