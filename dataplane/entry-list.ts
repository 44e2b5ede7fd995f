// A doubly linked list whose entries the caller keeps, for sets of objects
// that come and go all the time (requests in flight, open connections).
//
// Why not a Set: a Set's table is rebuilt as entries come and go, and V8
// leaves each replaced table pointing at the entries it held. Once such a
// table is in the old generation, dead, it still keeps those entries (young
// request objects) alive through every young-generation collection until
// they are promoted, and with them everything a response references. With
// one Set of in-flight responses, that promoted about 1.7 KiB per request and
// made the old generation grow by tens of MiB between full collections
// (docs/benchmarks.md, "What limits"). An entry unlinked here drops all its
// references, so nothing dead can keep anything alive.

/** One member of an {@link EntryList}; hold it to remove the member again. */
export interface ListEntry<T> {
  /** The member; `undefined` once removed. */
  readonly value: T | undefined;
}

interface Node<T> extends ListEntry<T> {
  value: T | undefined;
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
}

/** An unordered collection with O(1) add and remove through the entry `add` returns. */
export class EntryList<T> {
  #head: Node<T> | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(value: T): ListEntry<T> {
    const node: Node<T> = { value, prev: undefined, next: this.#head };
    if (this.#head !== undefined) this.#head.prev = node;
    this.#head = node;
    this.#size++;
    return node;
  }

  /** Remove a member; removing one twice is a no-op. */
  remove(entry: ListEntry<T>): void {
    const node = entry as Node<T>;
    if (node.value === undefined) return;
    if (node.prev !== undefined) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next !== undefined) node.next.prev = node.prev;
    node.value = undefined;
    node.prev = undefined;
    node.next = undefined;
    this.#size--;
  }

  /** Call `fn` for each member; `fn` may remove the member it is given. */
  forEach(fn: (value: T) => void): void {
    for (let n = this.#head; n !== undefined;) {
      const next = n.next;
      fn(n.value!);
      n = next;
    }
  }

  /** The members now; safe to remove members while iterating the copy. */
  values(): T[] {
    const out: T[] = [];
    for (let n = this.#head; n !== undefined; n = n.next) out.push(n.value!);
    return out;
  }
}
