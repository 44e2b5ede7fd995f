#!/usr/bin/env node
// Entry point for `npx pyserve`; needs Node 24 (type stripping).
import '../controller/main.ts';
