/** How a stage finished: the title it ends with, and why it failed or was skipped. */
export interface StageOutcome {
  status: 'ok' | 'failed' | 'skipped';
  title?: string;
  message?: string;
}

/** How a piece of work tells the stage list (the terminal's progress display) what it is doing. */
export interface StageReporter {
  start(index: number): void;
  update(index: number, text: string): void;
  finish(index: number, outcome: StageOutcome): void;
}
