import { AslDefinition, AslState, stateNamed } from './definition';

/** A Mermaid flowchart of an ASL definition: the diagram of docs/state-machine.md, kept in sync by a test. */
export function toMermaid(definition: AslDefinition): string {
  const lines = ['flowchart TD', `  Start([start]) --> ${definition.StartAt}`];
  for (const [name, state] of Object.entries(definition.States)) {
    const shape =
      state.Type === 'Choice'
        ? `${name}{${name}}`
        : state.Type === 'Fail'
          ? `${name}[[${name}]]`
          : state.Type === 'Task'
            ? `${name}[${name}]`
            : state.Type === 'Map'
              ? `${name}[/${name}: ${mapTasks(state).join(' → ')}, per item/]`
              : `${name}(${name})`;
    lines.push(`  ${shape}`);
    for (const choice of state.Choices ?? []) lines.push(`  ${name} -->|${choiceLabel(choice)}| ${choice.Next}`);
    if (state.Default) lines.push(`  ${name} -->|otherwise| ${state.Default}`);
    if (state.Next) lines.push(`  ${name} --> ${state.Next}`);
    for (const c of state.Catch ?? []) lines.push(`  ${name} -.->|${c.ErrorEquals.join(', ')}| ${c.Next}`);
    if (state.End) lines.push(`  ${name} --> Done([succeeded])`);
  }
  return lines.join('\n');
}

/**
 * A short label of a Choice rule, e.g. "from = all or customer",
 * "Error = States.TaskFailed, has Cause, Cause like *JobRunState*".
 */
function choiceLabel(rule: Record<string, unknown>): string {
  const field = (r: Record<string, unknown>) => String(r.Variable).split('.').pop();
  const describe = (r: Record<string, unknown>): string[] => {
    if (Array.isArray(r.And)) return (r.And as Record<string, unknown>[]).flatMap(describe);
    if (Array.isArray(r.Or)) {
      const or = r.Or as Record<string, unknown>[];
      const parts = or.map((sub) => describe(sub).join(', '));
      const [first] = or;
      const sameField =
        first !== undefined && or.every((sub) => typeof sub.StringEquals === 'string' && field(sub) === field(first));
      return sameField
        ? [`${field(first)} = ${(or as { StringEquals: string }[]).map((sub) => sub.StringEquals).join(' or ')}`]
        : [parts.join(' or ')];
    }
    if (r.Not) return [`not ${describe(r.Not as Record<string, unknown>).join(', ')}`];
    if (typeof r.StringEquals === 'string') return [`${field(r)} = ${r.StringEquals}`];
    if (r.IsPresent === true) return [`has ${field(r)}`];
    if (typeof r.BooleanEquals === 'boolean') return [`${field(r)} = ${r.BooleanEquals}`];
    if (typeof r.StringMatches === 'string') return [`${field(r)} like ${r.StringMatches.replace(/[{}"]/g, '')}`];
    return []; // IsString and the like: implied by the rest
  };
  return [...new Set(describe(rule))].join(', ');
}

/** The Task states a Map state runs for each item, in order from its StartAt. */
function mapTasks(state: AslState): string[] {
  const processor = (state.ItemProcessor ?? state.Iterator) as AslDefinition | undefined;
  if (!processor) return [];
  const tasks: string[] = [];
  for (let name: string | undefined = processor.StartAt; name && !tasks.includes(name);) {
    const inner = stateNamed(processor, name);
    if (inner.Type === 'Task') tasks.push(name);
    name = inner.Next ?? inner.Default;
  }
  return tasks;
}
