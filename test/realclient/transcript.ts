// A transcript: each step of a script with what the real tool answered.
import type { Step } from './script.js';

export interface Answer {
  rc: number;
  stdout: string;
  stderr: string;
}

export type Entry = Step & Answer;

export interface KernelTranscript {
  kernel: string;
  iproute2: string;
  steps: Entry[];
}
